"""A few SFT steps on a tiny random Gemma 3 (with the real Gemma tokenizer): the loss mask, the loss,
the weights, the saved directory, resuming, LoRA."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file
from sft_rows import FAST, ROWS, fresh

from grape.data.tables import write_rows
from grape.errors import InputError
from grape.models.load import load_model
from grape.scoring.score import score
from grape.text import Renderer
from grape.training.dataset import tokenise_examples
from grape.training.resume import last_checkpoint
from grape.training.settings import SFTSettings
from grape.training.sft import _trainer, sft


@pytest.fixture(scope="module")
def trained(base, tmp_path_factory):
    """Six steps of full fine-tuning, checkpoints every three, saved to a directory."""
    out = tmp_path_factory.mktemp("sft") / "model"
    write_rows(ROWS, out.parent / "selected.jsonl")
    result = sft(out.parent / "selected.jsonl", out, loaded=fresh(base), **FAST, max_steps=6, save_steps=3)
    return result, out


def _candidates(path):
    """The selection as a grouped scoring input, to score its responses before and after training."""
    rows = [{"id": r["id"], "prompt": r.get("prompt") or r["messages"][:1],
             "candidates": [{"text": r.get("completion") or r["messages"][-1]["content"], "source": "s"}]}
            for r in ROWS]  # fmt: skip
    return write_rows(rows, path)


def test_prompt_tokens_carry_no_loss(base, tmp_path):
    renderer = Renderer(base.tokenizer, "paper")
    examples = tokenise_examples(ROWS, renderer, max_length=512)
    settings = SFTSettings(**FAST, max_steps=1)
    trainer = _trainer(fresh(base), examples, settings, torch.device("cpu"), None, tmp_path)
    for row, example, prepared in zip(ROWS, examples, trainer.train_dataset, strict=True):
        prompt = row.get("prompt") or row["messages"][:1]
        response = row.get("completion") or row["messages"][-1]["content"]
        ids = renderer.encode(prompt, [response])[0]
        prompt_ids, response_ids = ids.prompt, ids.response
        # The trained sequence is exactly the scored one: prompt ids + response ids (+ EOS).
        assert prepared["input_ids"] == prompt_ids + response_ids
        assert response_ids[-1] == base.tokenizer.eos_token_id
        assert prepared["labels"] == [-100] * len(prompt_ids) + response_ids
        assert sum(example.completion_mask) == len(response_ids)


def test_padding_free_loss_equals_padded_loss(base):
    """Packing a batch into one row (block-diagonal attention) must not change the loss or the update."""
    curves = {pf: sft(ROWS, None, loaded=fresh(base), **FAST, max_steps=2, padding_free=pf).metrics["loss_curve"]
              for pf in (True, False)}  # fmt: skip
    assert [loss for _, loss in curves[True]] == pytest.approx([loss for _, loss in curves[False]], abs=1e-4)


def test_few_steps_lower_the_loss_and_change_the_weights(trained, tiny_model_dir):
    result, out = trained
    curve = [loss for _, loss in result.metrics["loss_curve"]]
    assert len(curve) == 6 and curve[-1] < curve[0] - 1.0  # nats per response token
    assert result.metrics["examples"] == 4 and result.metrics["response_tokens"] == 46  # EOS included
    original, saved = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    changed = [k for k in original if not torch.equal(original[k], saved[k])]
    assert len(changed) > len(original) // 2
    resolved = yaml.safe_load((out / "grape-sft.yaml").read_text())
    assert resolved["lr"] == 1e-2 and resolved["precision"] == "fp32" and resolved["max_length"] == 512
    done = json.loads((out / "grape-sft.json").read_text())
    assert done["metrics"]["steps"] == 6 and done["settings"]["template"] == "paper"


def test_the_saved_model_reloads_and_scores_its_training_responses_higher(trained, base, tmp_path):
    _, out = trained
    candidates = _candidates(tmp_path / "candidates.jsonl")
    before = [r["mean_logprob"] for r in score(candidates, None, loaded=base)]
    reloaded = load_model(str(out), "float32", "cpu")
    after = [r["mean_logprob"] for r in score(candidates, None, loaded=reloaded)]
    assert all(a > b + 1.0 for a, b in zip(after, before, strict=True))


def test_resumes_from_the_last_checkpoint(trained, base, tmp_path):
    _, out = trained
    copy_dir = shutil.copytree(out, tmp_path / "model")
    assert last_checkpoint(copy_dir / "checkpoints").name == "checkpoint-6"
    resumed = sft(ROWS, copy_dir, loaded=fresh(base), **FAST, max_steps=8, save_steps=3)
    assert resumed.metrics["resumed_from"].endswith("checkpoint-6")
    assert resumed.metrics["steps"] == 8
    assert [step for step, _ in resumed.metrics["loss_curve"]] == [1, 2, 3, 4, 5, 6, 7, 8]  # 1-6 from the state


def test_lora_is_merged_on_save(base, tiny_model_dir, tmp_path, heap_at_steps):
    out = tmp_path / "lora"
    result = sft(ROWS, out, loaded=fresh(base), **FAST, max_steps=2, lora_r=4)
    seen, switchable = heap_at_steps
    assert len(seen) == 2 and all(kept == switchable for kept in seen)  # on a CPU every step on a kept heap
    assert result.settings.lora_alpha == 8
    original, saved = load_file(tiny_model_dir / "model.safetensors"), load_file(out / "model.safetensors")
    assert set(saved) == set(original)  # no lora_A / lora_B left: a plain model
    changed = {k for k in original if not torch.equal(original[k], saved[k])}
    assert changed and all(k.endswith("proj.weight") for k in changed)  # the adapted linear layers only


def test_an_example_over_max_length_is_an_error_not_a_cut(base):
    with pytest.raises(InputError, match="row 1: .* over max_length 8"):
        sft(ROWS, None, loaded=fresh(base), **FAST, max_steps=1, max_length=8)
