"""The LM head in the other orientation for a few rows gives nn.Linear's output and gradients, and a model loaded
onto a CPU carries it without losing a tied embedding, its copies, pickles or saved weights."""

from __future__ import annotations

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from grape.models.small_batch_head import SmallBatchHead, use_small_batch_head


@pytest.mark.parametrize("shape", [(1, 40), (2, 40), (3, 40), (17, 40), (64, 40), (65, 40), (2, 5, 40), (4, 1, 40)])
@pytest.mark.parametrize("bias", [False, True])
def test_the_head_gives_linears_output_and_gradients(shape, bias):
    torch.manual_seed(0)
    reference = nn.Linear(40, 300, bias=bias)
    head = copy.deepcopy(reference)
    assert use_small_batch_head(_Model(head)) and type(head) is SmallBatchHead
    hidden = torch.randn(*shape, requires_grad=True)
    ours, expected = head(hidden), F.linear(hidden, reference.weight, reference.bias)
    assert ours.shape == expected.shape and ours.is_contiguous()
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    weights = torch.randn_like(expected)
    ours_grad = torch.autograd.grad((ours * weights).sum(), (hidden, head.weight))
    expected_grad = torch.autograd.grad((expected * weights).sum(), (hidden, reference.weight))
    for a, b in zip(ours_grad, expected_grad, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


class _Model(nn.Module):
    def __init__(self, head):
        super().__init__()
        self.head = head

    def get_output_embeddings(self):
        return self.head


def test_only_a_plain_linear_head_is_swapped():
    assert not use_small_batch_head(_Model(nn.Embedding(3, 4))) and not use_small_batch_head(nn.Linear(2, 2))


def test_a_model_loaded_onto_a_cpu_keeps_its_tie_its_copies_pickles_and_saved_weights(tiny_model_dir, tmp_path):
    from grape.models.load import load_model

    loaded = load_model(str(tiny_model_dir), "float32", "cpu")
    model = loaded.model
    head = model.get_output_embeddings()
    assert type(head) is SmallBatchHead and head.weight is model.get_input_embeddings().weight  # still tied
    ids = torch.tensor([[2, 10, 20, 30], [2, 40, 50, 60], [2, 70, 80, 90]])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits  # 12 rows through the head
        hidden = model.model(input_ids=ids).last_hidden_state
        # Gemma 3 soft-caps its logits after the head: the reference applies the same cap to nn.Linear's product
        cap = model.config.final_logit_softcapping
        expected = F.linear(hidden, head.weight)
        expected = expected if cap is None else torch.tanh(expected / cap) * cap
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-5)
    twin = copy.deepcopy(model)
    assert type(twin.get_output_embeddings()) is SmallBatchHead
    assert twin.get_output_embeddings().weight is twin.get_input_embeddings().weight
    assert type(pickle.loads(pickle.dumps(model)).get_output_embeddings()) is SmallBatchHead
    model.save_pretrained(tmp_path / "saved")
    loaded.tokenizer.save_pretrained(tmp_path / "saved")
    again = load_model(str(tmp_path / "saved"), "float32", "cpu").model
    with torch.inference_mode():
        torch.testing.assert_close(again(input_ids=ids).logits, logits)
