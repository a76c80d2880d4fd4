"""`--rollout greedy` (TL-Training's rollouts): each row's answer is the argmax of a full recomputation at every
step, whatever the sampler's seed; the log-probs kept are the policy's own; GRPO refuses it."""

from __future__ import annotations

import pytest
import torch

from grape.cli import build_parser, main
from grape.models.load import load_model
from grape.rl.cli import rl_settings
from grape.rl.rollout import sample_rollouts
from grape.text import Renderer

QUESTIONS = ["What is 2 + 2?", "A train leaves at noon and travels 60 miles in an hour. How far in three hours?", "Hi"]


def _greedy(loaded, seed, max_new_tokens=6):
    renderer = Renderer(loaded.tokenizer, "paper")
    prompts = [renderer.generation_ids(q) for q in QUESTIONS]
    rollouts = sample_rollouts(loaded.model, prompts, max_new_tokens=max_new_tokens, stop_ids=[],
                               pad_id=loaded.tokenizer.pad_token_id, generator=torch.Generator().manual_seed(seed),
                               greedy=True)  # fmt: skip
    return prompts, rollouts


@torch.no_grad()
def _argmax_by_recomputation(model, prompt, steps):
    """Reference: one row alone, no cache, no padding; the whole sequence recomputed at every step."""
    ids, chosen, logprobs = list(prompt), [], []
    for _ in range(steps):
        logits = model(input_ids=torch.tensor([ids])).logits[0, -1].float()
        token = int(logits.argmax())
        chosen.append(token)
        logprobs.append(float(torch.log_softmax(logits, dim=-1)[token]))
        ids.append(token)
    return chosen, logprobs


@pytest.mark.parametrize("model_dir", ["tiny_llama_dir", "tiny_gemma_dir"])
def test_greedy_rollouts_are_the_argmax_of_a_full_recomputation(model_dir, request):
    loaded = load_model(str(request.getfixturevalue(model_dir)), dtype="float32", device="cpu")
    prompts, rollouts = _greedy(loaded, seed=0)
    assert rollouts.prompt_mask.min() == 0, "the prompts must differ in length (left padding)"
    for row, prompt in enumerate(prompts):
        tokens, logprobs = _argmax_by_recomputation(loaded.model, prompt, steps=6)
        assert rollouts.response_ids[row].tolist() == tokens
        assert torch.allclose(rollouts.sample_logprobs[row], torch.tensor(logprobs), atol=2e-5)
    _, again = _greedy(loaded, seed=123)
    assert torch.equal(again.response_ids, rollouts.response_ids)


def test_sampled_rollouts_differ_from_greedy_ones(tiny_llama_dir):
    """The check above can fail: sampling (the default) is not the argmax on a random model's flat distribution."""
    loaded = load_model(str(tiny_llama_dir), dtype="float32", device="cpu")
    prompts, greedy = _greedy(loaded, seed=0)
    pad_id, generator = loaded.tokenizer.pad_token_id, torch.Generator().manual_seed(0)
    sampled = sample_rollouts(loaded.model, prompts, max_new_tokens=6, stop_ids=[], pad_id=pad_id, generator=generator)
    assert not torch.equal(sampled.response_ids, greedy.response_ids)


def test_the_flag_and_its_errors(tmp_path, capsys):
    args = build_parser().parse_args(["rl", "q.jsonl", "-o", "out", "--rollout", "greedy"])
    assert rl_settings(args).rollout == "greedy"
    assert main(["rl", "q.jsonl", "-o", str(tmp_path / "o"), "--rollout", "greedy", "--algo", "grpo"]) == 2
    err = capsys.readouterr().err.strip()
    assert "rollout greedy is PPO's" in err and len(err.splitlines()) == 1


def test_the_ppo_loop_rolls_out_greedily_only_when_asked(tiny_llama_dir, tmp_path, monkeypatch):
    import json

    import grape.rl.ppo

    asked = []

    def recording(*args, **kwargs):
        asked.append(kwargs.get("greedy", False))
        return sample_rollouts(*args, **kwargs)

    monkeypatch.setattr(grape.rl.ppo, "sample_rollouts", recording)
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"prompt": q, "answer": "4"}) + "\n" for q in ("2 + 2?", "1 + 3?")))
    for rollout in ("greedy", "sample"):
        code = main(["rl", str(data), "--model", str(tiny_llama_dir), "-o", str(tmp_path / rollout), "--verifier",
                     "number", "--max-steps", "1", "--batch-size", "2", "--max-new-tokens", "3", "--device", "cpu",
                     "--lora-r", "2", "--rollout", rollout])  # fmt: skip
        assert code == 0
    assert asked == [True, False]
