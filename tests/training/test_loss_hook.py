"""The SFT trainer's loss hook on tiny random models with real tokenizers (Gemma 3: tied head, soft-capping;
Llama with SmolLM2's tokenizer: untied head): weighted losses against an independent computation with
grape.models.logprobs on a plain forward, against TRL's own loss, through gradient accumulation; the
default objective left on TRL's path."""

from __future__ import annotations

import pytest
import torch
from sft_rows import FAST, ROWS, fresh
from tiny_models import tiny_llama
from trl import SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from grape.models.load import LoadedModel, load_model
from grape.models.logprobs import head_settings, token_logprobs
from grape.text import Renderer
from grape.training.dataset import tokenise_examples
from grape.training.objectives import OBJECTIVES
from grape.training.settings import SFTSettings
from grape.training.sft import _trainer, sft

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


def with_weights(rows: list[dict], loaded: LoadedModel, make) -> list[dict]:
    """The rows with ``loss_weights = make(row number, number of response tokens)``."""
    examples = tokenise_examples(rows, Renderer(loaded.tokenizer, "paper"), 512)
    counts = [sum(e.completion_mask) for e in examples]
    return [{**row, "loss_weights": make(i, n)} for i, (row, n) in enumerate(zip(rows, counts, strict=True))]


def trainer_loss(loaded: LoadedModel, rows: list[dict], loss: str, padding_free: bool, tmp_path, backward=False):
    """The loss (and the gradient of the embeddings) the trainer computes on one batch of all ``rows``."""
    examples = tokenise_examples(rows, Renderer(loaded.tokenizer, "paper"), 512, weighted=OBJECTIVES[loss].weighted)
    settings = SFTSettings(**FAST, max_steps=1, loss=loss, padding_free=padding_free)
    trainer = _trainer(fresh(loaded), examples, settings, torch.device("cpu"), None, tmp_path)
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    trainer.model.train()
    value = trainer.compute_loss(trainer.model, batch)
    if not backward:
        return value.detach()
    value.backward()
    return value.detach(), trainer.model.get_input_embeddings().weight.grad


def reference_nlls(loaded: LoadedModel, rows: list[dict]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per row: (NLL of each response token, its weight), from a plain forward of that row alone."""
    out = []
    for example in tokenise_examples(rows, Renderer(loaded.tokenizer, "paper"), 512, weighted=True):
        ids = torch.tensor([example.input_ids])
        with torch.no_grad():
            hidden = loaded.model.base_model(input_ids=ids).last_hidden_state[0]
        logprobs = token_logprobs(hidden[:-1], targets=ids[0, 1:], **head_settings(loaded.model))
        response = torch.tensor(example.completion_mask[1:], dtype=torch.bool)  # token 0 is never a response token
        out.append((-logprobs[response], torch.tensor(example.loss_weights[1:])[response]))
    return out


@LAYOUTS
def test_weighted_token_loss_with_unit_weights_equals_trls_loss_and_gradient(gemma_tiny, padding_free, tmp_path):
    nll, nll_grad = trainer_loss(gemma_tiny, ROWS, "nll", padding_free, tmp_path, backward=True)
    weighted, weighted_grad = trainer_loss(gemma_tiny, ROWS, "weighted-token", padding_free, tmp_path, backward=True)
    torch.testing.assert_close(weighted, nll, rtol=0, atol=1e-6)
    assert weighted_grad.abs().sum() > 0 and torch.isfinite(weighted_grad).all()
    torch.testing.assert_close(weighted_grad, nll_grad, rtol=1e-5, atol=1e-7)


@LAYOUTS
def test_one_weighted_token_gives_exactly_that_tokens_nll(tiny, padding_free, tmp_path):
    """Zero weight everywhere but on the third response token of row 'c': the loss is that token's NLL."""
    rows = with_weights(ROWS, tiny, lambda i, n: [2.5 if (i, t) == (2, 2) else 0.0 for t in range(n)])
    expected = reference_nlls(tiny, rows)[2][0][2]
    for loss in ("weighted", "weighted-token"):
        value, grad = trainer_loss(tiny, rows, loss, padding_free, tmp_path, backward=True)
        torch.testing.assert_close(value, expected, rtol=0, atol=1e-5)
        assert grad.abs().sum() > 0  # the gradient flows back to the embeddings


@LAYOUTS
def test_weighted_losses_equal_an_independent_computation(tiny, padding_free, tmp_path):
    generator = torch.Generator().manual_seed(0)
    rows = with_weights(ROWS, tiny, lambda i, n: [0.0] * n if i == 1 else torch.rand(n, generator=generator).tolist())
    reference = reference_nlls(tiny, rows)
    per_sequence = [(w * nll).sum() / w.sum() for nll, w in reference if w.sum() > 0]
    assert len(per_sequence) == 3  # row 'b' has no weight: it does not count
    expected_sequence = torch.stack(per_sequence).mean()
    expected_token = sum((w * nll).sum() for nll, w in reference) / sum(w.sum() for _, w in reference)
    assert not torch.isclose(expected_sequence, expected_token, atol=1e-3)  # the two normalisations differ here
    got_sequence = trainer_loss(tiny, rows, "weighted", padding_free, tmp_path)
    got_token = trainer_loss(tiny, rows, "weighted-token", padding_free, tmp_path)
    torch.testing.assert_close(got_sequence, expected_sequence, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_token, expected_token, rtol=0, atol=1e-5)


def test_the_default_objective_is_trls_own_path(gemma_tiny, tmp_path):
    """nll: TRL's collator and dataset unchanged, rows' loss_weights ignored, the loss of a plain SFTTrainer."""
    rows = with_weights(ROWS, gemma_tiny, lambda i, n: [0.0] * n)
    examples = tokenise_examples(rows, Renderer(gemma_tiny.tokenizer, "paper"), 512)
    trainer = _trainer(
        fresh(gemma_tiny), examples, SFTSettings(**FAST, max_steps=1), torch.device("cpu"), None, tmp_path
    )
    assert type(trainer.data_collator) is DataCollatorForLanguageModeling
    assert "loss_weights" not in trainer.train_dataset.column_names
    plain = SFTTrainer(model=fresh(gemma_tiny).model, args=trainer.args, train_dataset=trainer.train_dataset,
                       processing_class=gemma_tiny.tokenizer)  # fmt: skip
    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(rows))])
    ours, theirs = trainer.compute_loss(trainer.model, dict(batch)), plain.compute_loss(plain.model, dict(batch))
    assert torch.equal(ours, theirs) and ours.item() > 1.0


def test_gradient_accumulation_normalises_over_the_whole_step(gemma_tiny):
    """Micro-batches with different token counts (batch 2 x 2 accumulation steps): weighted-token with unit
    weights follows TRL's nll step by step; the per-sequence loss of a split step equals the unsplit one
    (a per-micro-batch mean divided by the steps would not: one half holds a row without weight)."""
    split = dict(FAST, batch_size=2, grad_accum=2, max_steps=2)

    def curve(rows, **settings):
        return [loss for _, loss in sft(rows, None, loaded=fresh(gemma_tiny), **settings).metrics["loss_curve"]]

    assert curve(ROWS, **split, loss="weighted-token") == pytest.approx(curve(ROWS, **split), abs=1e-5)
    rows = with_weights(ROWS, gemma_tiny, lambda i, n: [0.0] * n if i == 0 else [1.0 + t % 3 for t in range(n)])
    whole = curve(rows, **dict(FAST, max_steps=2), loss="weighted")
    assert curve(rows, **split, loss="weighted") == pytest.approx(whole, abs=1e-5)
    assert whole[1] < whole[0]  # and it trains
    lora = curve(rows, **dict(FAST, max_steps=2), loss="weighted", lora_r=4)  # through PEFT's wrapper too
    assert lora[0] == pytest.approx(whole[0], abs=1e-5) and lora[1] < lora[0]  # B = 0: the same model at step 1
