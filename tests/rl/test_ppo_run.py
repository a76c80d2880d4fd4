"""The whole PPO run on a tiny model: its outputs, resume, data order and bad input."""

import json
import sys

import pytest
import torch
from safetensors.torch import load_file

from grape.config import load_settings
from grape.errors import InputError
from grape.models.load import load_model
from grape.rl.ppo import batch_rows
from grape.rl.run import rl
from grape.rl.settings import RLSettings

# A user's verifier, as `--verifier python:module:function` imports it: right when the answer's length in
# characters is a multiple of the item's answer (2). A random model's answers then earn 1 or 0.1 within one batch,
# so PPO has a signal.
VERIFIER = "def even_length(text, item):\n    return len(text) % int(item['answer']) == 0\n"
QUESTIONS = ["What is 2 + 2?", "Name a prime.", "How many days has a week?", "Spell cat.", "Say hi.", "Count to 3."]


@pytest.fixture
def questions(tmp_path, monkeypatch):
    (tmp_path / "rl_even_length.py").write_text(VERIFIER)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield _write(tmp_path / "questions.jsonl", [{"prompt": q, "answer": "2"} for q in QUESTIONS])
    sys.modules.pop("rl_even_length", None)


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _settings(model_dir, **overrides):
    base = dict(model=str(model_dir), verifier="python:rl_even_length:even_length", batch_size=3,
                max_new_tokens=8, device="cpu", lr=1e-3, kl_coef=0.05)  # fmt: skip
    return RLSettings(**{**base, **overrides})


def test_a_run_writes_the_model_its_settings_history_and_checkpoints(
    tiny_llama_dir, questions, tmp_path, heap_at_steps
):
    out = tmp_path / "run"
    result = rl(questions, out, _settings(tiny_llama_dir, lora_r=4, max_steps=3, save_steps=1))
    assert [h["step"] for h in result.history] == [1, 2, 3]
    seen, switchable = heap_at_steps
    assert seen and all(kept == switchable for kept in seen)  # on a CPU every update on a kept heap
    # every answer is judged (1 or 0.1), and some batch mixes right and wrong ones: PPO had a signal
    assert all(h["answered"] == 1.0 and 0.1 <= h["reward"] <= 1.0 for h in result.history)
    assert any(0 < h["right"] < 1 for h in result.history), [(h["right"], h["response_tokens"]) for h in result.history]
    assert all(h["sample_logprob_gap"] < 1e-4 for h in result.history)
    assert result.history[0]["kl"] == pytest.approx(0.0, abs=1e-5)  # the policy starts as the reference
    assert any(abs(h["kl"]) > 1e-6 for h in result.history[1:])  # and moves away
    lines = (out / "rl-history.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in lines] == [1, 2, 3]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002.pt", "step-000003.pt"]
    settings = load_settings(RLSettings, out / "grape-rl.yaml")
    assert (settings.lora_r, settings.lora_alpha, settings.lr, settings.max_steps) == (4, 8, 1e-3, 3)
    meta = json.loads((out / "grape-rl.json").read_text())
    assert meta["metrics"]["steps"] == 3 and meta["algorithm"] == "ppo"
    card = (out / "README.md").read_text()
    assert "(PPO)" in card and "| lam | 0.95 |" in card and "| lora_r | 4 |" in card
    assert "- rollout batches: 3" in card and "python:rl_even_length:even_length" in card
    trained = load_model(str(out), dtype="float32", device="cpu").model  # a plain model: LoRA merged in
    original = load_model(str(tiny_llama_dir), dtype="float32", device="cpu").model
    assert not any("lora" in name for name, _ in trained.named_parameters())
    changed = [not torch.equal(a, b) for a, b in zip(trained.parameters(), original.parameters(), strict=True)]
    assert any(changed)
    assert torch.load(out / "value_head.pt", weights_only=True)["weight"].abs().sum() > 0


def test_a_resumed_run_equals_an_uninterrupted_one(tiny_llama_dir, questions, tmp_path):
    # mini-batches of 1 draw their order from torch's generator: the resume must restore it too
    settings = _settings(tiny_llama_dir, max_steps=3, mini_batch_size=1, save_steps=1)
    whole = rl(questions, tmp_path / "whole", settings)
    interrupted = tmp_path / "interrupted"
    rl(questions, interrupted, settings, max_steps=1)
    resumed = rl(questions, interrupted, settings)
    assert resumed.metrics["resumed_from"].endswith("step-000001.pt")

    def timeless(history):
        return [{k: v for k, v in h.items() if not k.endswith("_seconds")} for h in history]

    assert timeless(resumed.history) == timeless(whole.history)
    a = load_file(tmp_path / "whole" / "model.safetensors")
    b = load_file(interrupted / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    heads = [torch.load(p / "value_head.pt", weights_only=True) for p in (tmp_path / "whole", interrupted)]
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])
    # and the run did learn something, so that equality is not two untouched models
    original = load_file(tiny_llama_dir / "model.safetensors")
    assert any(not torch.equal(a[k], original[k]) for k in a)


def test_each_epoch_visits_every_question_once_in_a_fresh_order():
    rows = [r for step in range(5) for r in batch_rows(5, 2, step, seed=0)]
    assert sorted(rows[:5]) == [0, 1, 2, 3, 4] and sorted(rows[5:10]) == [0, 1, 2, 3, 4]
    assert rows[:5] != rows[5:10]
    assert batch_rows(5, 2, 3, seed=0) == batch_rows(5, 2, 3, seed=0) != batch_rows(5, 2, 3, seed=1)


def test_a_row_without_its_answer_is_a_one_line_error_naming_row_and_field(tiny_llama_dir, tmp_path):
    data = _write(tmp_path / "bad.jsonl", [{"prompt": "1 + 1?", "answer": "2"}, {"prompt": "2 + 2?"}])
    with pytest.raises(InputError, match=r"bad.jsonl, row 2, field 'answer': missing"):
        rl(data, tmp_path / "out", _settings(tiny_llama_dir, verifier="number", max_steps=1))
    data = _write(tmp_path / "bad2.jsonl", [{"question": "1 + 1?", "answer": "2"}])
    with pytest.raises(InputError, match=r"row 1, field 'prompt'"):
        rl(data, tmp_path / "out", _settings(tiny_llama_dir, verifier="number", max_steps=1))
    assert not (tmp_path / "out").exists()  # refused before OUTDIR or its grape-rl.yaml was written
