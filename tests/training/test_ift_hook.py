"""`grape sft --loss ift` through the trainer's loss hook, on tiny random models with real tokenizers (Gemma 3:
scaled embeddings, tied head, soft-capping; Llama with SmolLM2's tokenizer: untied head), padded and
padding-free: λ = γ = 0 is ordinary SFT, λ > 0 equals an independent per-row computation (greedy predictions
from plain logits, the mixed embeddings, the official weights), gradients reach the trained parameters and
never the frozen copy, and a run from the command line."""

from __future__ import annotations

import pytest
import torch
import yaml
from sft_rows import FAST, ROWS, fresh
from test_ift_losses import reference_ift_rows
from tiny_models import tiny_llama

from grape.cli import main
from grape.data.tables import write_rows
from grape.models.load import LoadedModel, load_model
from grape.text import Renderer
from grape.training.dataset import tokenise_examples
from grape.training.objectives import OBJECTIVES
from grape.training.settings import SFTSettings
from grape.training.sft import _trainer

LAYOUTS = pytest.mark.parametrize("padding_free", [True, False], ids=["padding-free", "padded"])


@pytest.fixture(scope="module")
def gemma_tiny(tiny_model_dir) -> LoadedModel:
    return load_model(str(tiny_model_dir), "float32", "cpu")


@pytest.fixture(scope="module")
def llama_tiny(smollm2) -> LoadedModel:
    return LoadedModel(tiny_llama(vocab_size=smollm2.model.config.vocab_size), smollm2.tokenizer)


@pytest.fixture(params=["gemma", "llama"])
def tiny(request) -> LoadedModel:
    return request.getfixturevalue(f"{request.param}_tiny")


def hooked_loss(loaded: LoadedModel, loss: str, padding_free: bool, tmp_path, **settings):
    """(loss, trainer) of one batch of all ROWS, after backward."""
    examples = tokenise_examples(ROWS, Renderer(loaded.tokenizer, "paper"), 512, weighted=OBJECTIVES[loss].weighted)
    config = SFTSettings(**FAST, max_steps=1, loss=loss, padding_free=padding_free, **settings)
    trainer = _trainer(fresh(loaded), examples, config, torch.device("cpu"), None, tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(ROWS))])
    trainer.model.train()
    value = trainer.compute_loss(trainer.model, batch)
    value.backward()
    return value.detach(), trainer


def reference_ift(loaded: LoadedModel, lam: float, gamma: float) -> torch.Tensor:
    """Row by row with plain forward passes: ŷ from the argmax of the gold pass's logits, the mixed embeddings of
    the model's own embedding module, the official per-row weighting (test_ift_losses.reference_ift_rows)."""
    model, embed = loaded.model, loaded.model.get_input_embeddings()
    losses = []
    for example in tokenise_examples(ROWS, Renderer(loaded.tokenizer, "paper"), 512):
        ids = torch.tensor([example.input_ids])
        response = torch.tensor([example.completion_mask], dtype=torch.bool)
        with torch.no_grad():
            predicted = model(input_ids=ids).logits.argmax(-1)
            fed = torch.where(response, torch.cat([ids[:, :1], predicted[:, :-1]], dim=1), ids)
            mixed = (1 - lam) * embed(ids) + lam * embed(fed)
            logps = torch.log_softmax(model(inputs_embeds=mixed).logits[:, :-1].float(), -1)
        target_logps = logps.gather(-1, ids[:, 1:, None]).squeeze(-1)
        losses.append(reference_ift_rows(target_logps, response[:, 1:], gamma))
    return torch.stack(losses).mean()


@LAYOUTS
def test_lambda_and_gamma_zero_is_ordinary_sft(tiny, padding_free, tmp_path):
    """The same loss and trunk gradient as the per-sequence NLL (`weighted` with all weights 1) on the same batch."""
    ift, ift_trainer = hooked_loss(tiny, "ift", padding_free, tmp_path, ift_lambda=0.0, ift_gamma=0.0)
    sft, sft_trainer = hooked_loss(tiny, "weighted", padding_free, tmp_path)
    torch.testing.assert_close(ift, sft, rtol=0, atol=1e-6)  # test_loss_hook checks `weighted` independently

    def trunk_grads(trainer):
        return {n: p.grad for n, p in trainer.model.named_parameters() if "layers" in n and p.grad is not None}

    ours, theirs = trunk_grads(ift_trainer), trunk_grads(sft_trainer)
    assert ours.keys() == theirs.keys() and len(ours) > 4
    for name in ours:
        torch.testing.assert_close(ours[name], theirs[name], rtol=1e-5, atol=1e-7)


@LAYOUTS
def test_the_ift_loss_equals_an_independent_per_row_computation(tiny, padding_free, tmp_path):
    got, _ = hooked_loss(tiny, "ift", padding_free, tmp_path, ift_lambda=0.3, ift_gamma=0.9)
    torch.testing.assert_close(got, reference_ift(tiny, 0.3, 0.9), rtol=0, atol=1e-5)
    assert not torch.isclose(got, reference_ift(tiny, 0.0, 0.0), atol=1e-3)  # λ and γ changed the loss


def test_gradients_reach_the_trained_parameters_and_never_the_frozen_copy(tiny, tmp_path):
    _, trainer = hooked_loss(tiny, "ift", True, tmp_path)
    frozen = trainer.frozen_embeddings.weight
    assert not frozen.requires_grad and frozen.grad is None
    assert frozen.data_ptr() != trainer.model.get_input_embeddings().weight.data_ptr()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for n, p in trainer.model.named_parameters()
               if "layers" in n and n.endswith("proj.weight"))  # fmt: skip
    _, lora = hooked_loss(tiny, "ift", True, tmp_path, lora_r=2, lora_alpha=4)
    trained = [p for p in lora.model.parameters() if p.requires_grad]
    assert trained and all(p.grad is not None for p in trained)
    assert not any(p.grad is not None for p in lora.model.parameters() if not p.requires_grad)


def test_grape_sft_loss_ift_from_the_command_line(tiny_model_dir, tmp_path):
    selected = write_rows(ROWS, tmp_path / "selected.jsonl")
    out = tmp_path / "out"
    assert main(["sft", str(selected), "-o", str(out), "--model", str(tiny_model_dir), "--template", "paper",
                 "--loss", "ift", "--ift-lambda", "0.3", "--ift-gamma", "0.9", "--max-steps", "2", "--lr", "1e-2",
                 "--batch-size", "4", "--precision", "fp32", "--device", "cpu"]) == 0  # fmt: skip
    saved = yaml.safe_load((out / "grape-sft.yaml").read_text())
    assert (saved["loss"], saved["ift_lambda"], saved["ift_gamma"]) == ("ift", 0.3, 0.9)
    assert (out / "model.safetensors").is_file()
    assert main(["sft", str(selected), "-o", str(tmp_path / "bad"), "--loss", "ift", "--ift-lambda", "1.5"]) == 2
