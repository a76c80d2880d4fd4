"""`grape rl --algo grpo` on tiny models: TRL's GRPOTrainer generating from the Renderer's ids, the verifier
called with the completions TRL sampled, the group-relative advantage by hand, outputs, resume, settings."""

import importlib
import json
import statistics
import sys

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer

from grape.config import load_settings
from grape.errors import GrapeError
from grape.rl.grpo import RenderedGRPOTrainer, grpo_config
from grape.rl.run import rl
from grape.rl.settings import RLSettings, check, resolved
from grape.text import Renderer

# A user's verifier that keeps what it was called with (a real `python:module:function` verifier, not a stand-in):
# right when the answer's length is a multiple of the gold answer (2), so a random model's group mixes 1 and 0.1.
VERIFIER = (
    "CALLS = []\n"
    "def even_length(text, item):\n"
    "    CALLS.append((text, item))\n"
    "    return len(text) % int(item['answer']) == 0\n"
)
QUESTIONS = ["What is 2 + 2?", "Name a prime.", "How many days has a week?", "Spell cat."]


@pytest.fixture
def recorded(tmp_path, monkeypatch):
    (tmp_path / "rl_grpo_record.py").write_text(VERIFIER)
    monkeypatch.syspath_prepend(str(tmp_path))
    data = tmp_path / "questions.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "answer": "2"}) + "\n" for q in QUESTIONS))
    yield data, importlib.import_module("rl_grpo_record").CALLS
    sys.modules.pop("rl_grpo_record", None)


@pytest.fixture
def scored_batches(monkeypatch):
    """Every generation batch TRL scores, as `_generate_and_score_completions` returns it (before its shuffle)."""
    seen = []
    original = RenderedGRPOTrainer._generate_and_score_completions

    def keep(self, inputs):
        output = original(self, inputs)
        seen.append({k: v.detach().clone() if torch.is_tensor(v) else v for k, v in output.items()})
        return output

    monkeypatch.setattr(RenderedGRPOTrainer, "_generate_and_score_completions", keep)
    return seen


def _settings(model_dir, **overrides):
    base = dict(model=str(model_dir), algo="grpo", verifier="python:rl_grpo_record:even_length", batch_size=2,
                num_generations=3, max_new_tokens=6, device="cpu", lr=1e-3, kl_coef=0.05)  # fmt: skip
    return RLSettings(**{**base, **overrides})


def _unpadded(ids, mask):
    return [row[m.bool()].tolist() for row, m in zip(ids, mask, strict=True)]


def test_grpo_generates_from_the_rendered_ids_and_rewards_the_sampled_completions(
    tiny_gemma_dir, recorded, scored_batches, tmp_path
):
    """Gemma's ids start with <bos>, so the text TRL is shown does too: its own tokenisation would add a second."""
    data, calls = recorded
    out = tmp_path / "run"
    result = rl(data, out, _settings(tiny_gemma_dir, max_steps=2, lora_r=4))
    assert result.metrics["steps"] == 2
    renderer = Renderer(AutoTokenizer.from_pretrained(tiny_gemma_dir), "paper", True)
    assert len(scored_batches) == 2 and len(calls) == 2 * 2 * 3
    for batch_number, batch in enumerate(scored_batches):
        batch_calls = calls[batch_number * 6 : (batch_number + 1) * 6]
        prompts = _unpadded(batch["prompt_ids"], batch["prompt_mask"])
        for (_, item), ids in zip(batch_calls, prompts, strict=True):
            assert ids == renderer.generation_ids(item["prompt"])  # the tokens generated from are the text's tokens
            assert ids.count(renderer.tokenizer.bos_token_id) == 1
        # TRL's own step, on the text it was given, would have generated from other ids
        trl_ids = [renderer.tokenizer(text)["input_ids"] for text in (renderer.tokenizer.decode(p) for p in prompts)]
        assert all(t != p for t, p in zip(trl_ids, prompts, strict=True))
        completions = _unpadded(batch["completion_ids"], batch["completion_mask"])
        texts = renderer.tokenizer.batch_decode(completions, skip_special_tokens=True)
        assert [text for text, _ in batch_calls] == texts  # the verifier judged exactly what was sampled
        # groups of num_generations consecutive completions of one question
        assert all(len({c[1]["prompt"] for c in batch_calls[g : g + 3]}) == 1 for g in (0, 3))
        # GRPO's advantage by hand: (r - mean of the group) / (its sample standard deviation + 1e-4)
        rewards = [1.0 if len(text) % 2 == 0 else 0.1 for text, _ in batch_calls]
        expected = []
        for group in (rewards[:3], rewards[3:]):
            mean, spread = statistics.fmean(group), statistics.stdev(group)
            expected += [(r - mean) / (spread + 1e-4) for r in group]
        torch.testing.assert_close(batch["advantages"].cpu(), torch.tensor(expected), rtol=1e-5, atol=1e-5)
    assert any(0 < statistics.fmean(1.0 if len(t) % 2 == 0 else 0.0 for t, _ in calls[g : g + 3]) < 1
               for g in range(0, len(calls), 3))  # some group mixed rewards: some advantage was not 0  # fmt: skip


def test_a_grpo_run_writes_the_model_its_card_settings_and_history(tiny_llama_dir, recorded, tmp_path, heap_at_steps):
    data, _ = recorded
    out = tmp_path / "run"
    result = rl(data, out, _settings(tiny_llama_dir, max_steps=2, ppo_epochs=1, mini_batch_size=1, save_steps=1))
    assert [h["step"] for h in result.history] == [1, 2]
    seen, switchable = heap_at_steps
    assert len(seen) == 4 and all(kept == switchable for kept in seen)  # on a CPU every step on a kept heap
    assert [h["optimizer_step"] for h in result.history] == [2, 4]  # one per mini-batch of 1 question
    assert all(0.1 <= h["reward"] <= 1.0 and h["answered"] == 1.0 and 0 <= h["right"] <= 1 for h in result.history)
    # timed as PPO's batches: sampling, and the rest of the batch
    assert all(0 < h["rollout_seconds"] < h["batch_seconds"] and h["update_seconds"] > 0 for h in result.history)
    assert result.value_head is None and not (out / "value_head.pt").exists()
    settings = load_settings(RLSettings, out / "grape-rl.yaml")
    assert (settings.algo, settings.num_generations, settings.lr) == ("grpo", 3, 1e-3)
    meta = json.loads((out / "grape-rl.json").read_text())
    assert meta["algorithm"] == "grpo" and meta["metrics"]["steps"] == 2 and meta["questions"] == 4
    card = (out / "README.md").read_text()
    assert "GRPO" in card and "| num_generations | 3 |" in card and "python:rl_grpo_record:even_length" in card
    assert f"grape rl {data} -o {out} --config {out / 'grape-rl.yaml'}" in card
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    trained, original = load_file(out / "model.safetensors"), load_file(tiny_llama_dir / "model.safetensors")
    assert any(not torch.equal(trained[k], original[k]) for k in trained)


def test_a_resumed_grpo_run_equals_an_uninterrupted_one(tiny_llama_dir, recorded, tmp_path):
    data, _ = recorded
    settings = _settings(tiny_llama_dir, max_steps=2, save_steps=1, lora_r=2)
    whole = rl(data, tmp_path / "whole", settings)
    rl(data, tmp_path / "cut", settings, max_steps=1)
    resumed = rl(data, tmp_path / "cut", settings)
    assert resumed.metrics["resumed_from"].endswith("checkpoint-2")  # 2 optimizer steps (ppo_epochs) per batch

    def timeless(history):
        return [{k: v for k, v in h.items() if "time" not in k and "seconds" not in k} for h in history]

    assert timeless(resumed.history) == timeless(whole.history)
    a, b = load_file(tmp_path / "whole" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_grpo_rerun_with_other_settings_stops_before_writing_its_settings(tiny_llama_dir, recorded, tmp_path):
    data, _ = recorded
    out = tmp_path / "run"
    rl(data, out, _settings(tiny_llama_dir, max_steps=1, save_steps=1, ppo_epochs=1))
    saved = (out / "grape-rl.yaml").read_text()
    with pytest.raises(GrapeError, match=r"other settings \(verifier, kl_coef\); --resume to continue from "
                       "checkpoint-1 anyway"):  # fmt: skip
        rl(data, out, _settings(tiny_llama_dir, max_steps=1, save_steps=1, ppo_epochs=1, kl_coef=0.01,
                                verifier="number"))  # fmt: skip
    assert (out / "grape-rl.yaml").read_text() == saved


def test_the_grpo_config_maps_grapes_settings():
    settings = resolved(RLSettings(algo="grpo", batch_size=4, mini_batch_size=2, num_generations=3, ppo_epochs=2,
                                   kl_coef=0.01, aggregation="token", max_new_tokens=50, save_steps=5))  # fmt: skip
    config = grpo_config(settings, n_questions=10, folder="/tmp/unused", device=torch.device("cpu"))
    assert (config.per_device_train_batch_size, config.steps_per_generation, config.generation_batch_size) == (6, 2, 12)
    assert (config.num_iterations, config.gradient_accumulation_steps, config.logging_steps) == (2, 1, 4)
    assert config.max_steps == 2 * 4  # one epoch: 10 // 4 = 2 whole rollout batches, 4 optimizer steps each
    assert (config.beta, config.epsilon, config.loss_type, config.max_completion_length) == (0.01, 0.2, "dapo", 50)
    assert (config.temperature, config.top_k, config.top_p, config.save_steps) == (1.0, 0, 1.0, 20)
    assert config.lr_scheduler_type == "constant" and not config.activation_checkpointing and not config.bf16
    sequence = grpo_config(resolved(RLSettings(algo="grpo")), 10, "/tmp/unused", torch.device("cpu"))
    assert sequence.loss_type == "grpo" and sequence.per_device_train_batch_size == 8 * 8
    # micro-batches: the same generation batch and optimizer steps, each step accumulated over passes of one question
    micro = grpo_config(resolved(RLSettings(algo="grpo", batch_size=4, mini_batch_size=2, micro_batch_size=1,
                                            num_generations=3)), 10, "/tmp/unused", torch.device("cpu"))  # fmt: skip
    assert (micro.per_device_train_batch_size, micro.gradient_accumulation_steps) == (3, 2)
    assert (micro.steps_per_generation, micro.generation_batch_size) == (4, 12)
    assert (micro.max_steps, micro.logging_steps) == (config.max_steps, config.logging_steps)


def test_grpo_settings_that_cannot_run_are_one_line_errors(tiny_llama_dir, recorded, tmp_path):
    with pytest.raises(GrapeError, match="num_generations must be at least 2"):
        check(RLSettings(algo="grpo", num_generations=1))
    with pytest.raises(GrapeError, match="unknown algo 'reinforce'"):
        check(RLSettings(algo="reinforce"))
    check(RLSettings(algo="ppo", num_generations=1))  # PPO samples one answer per question and ignores it
    data, _ = recorded
    with pytest.raises(GrapeError, match="batch_size 5 is more than the 4 questions"):
        rl(data, tmp_path / "out", _settings(tiny_llama_dir, batch_size=5, max_steps=1))
    assert not (tmp_path / "out").exists()  # refused before OUTDIR or its grape-rl.yaml was written
