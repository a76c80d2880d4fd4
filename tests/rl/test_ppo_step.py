"""One PPO update on fixed rollouts moves the policy the way the advantages say."""

import pytest
import torch

from grape.models.load import load_model
from grape.rl.policy import build_policy, response_logprobs_and_values
from grape.rl.ppo_step import ppo_targets, ppo_update
from grape.rl.rollout import sample_rollouts
from grape.rl.settings import RLSettings
from grape.text import Renderer

QUESTIONS = ["What is 7 times 6?", "Name a colour.", "How many legs has a spider?", "Count to three."]


def _setup(model_dir, lora_r):
    torch.manual_seed(0)
    loaded = load_model(str(model_dir), dtype="float32", device="cpu")
    renderer = Renderer(loaded.tokenizer, "paper")
    policy = build_policy(loaded.model, lora_r=lora_r)
    rollouts = sample_rollouts(
        policy.model,
        [renderer.generation_ids(q) for q in QUESTIONS],
        max_new_tokens=6,
        stop_ids=renderer.end_ids,
        pad_id=loaded.tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(3),
    )
    return policy, rollouts


@pytest.mark.parametrize(("lora_r", "lr"), [(0, 1e-3), (4, 1e-2)])
def test_one_ppo_step_raises_the_log_prob_of_tokens_with_positive_advantage(tiny_llama_dir, lora_r, lr):
    policy, rollouts = _setup(tiny_llama_dir, lora_r)
    scores = torch.tensor([1.0, 0.0, 1.0, 0.1])
    settings = RLSettings(kl_coef=0.0, ppo_epochs=1, lr=lr)
    targets = ppo_targets(policy, rollouts, scores, settings)
    keep = rollouts.response_mask.bool()
    positive, negative = (targets.advantages > 0) & keep, (targets.advantages < 0) & keep
    assert positive.any() and negative.any()
    before = targets.old_logprobs
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=lr, weight_decay=0.0)
    stats = ppo_update(policy, optimizer, rollouts, scores, settings)
    with torch.no_grad():
        after, values = response_logprobs_and_values(policy.model, policy.value_head, rollouts)
    change = after - before
    assert change[positive].mean() > 0 and change[negative].mean() < 0
    # with one epoch the ratio starts at exactly 1: the training pass reproduces the old log-probs
    assert stats["clip_fraction"] == 0.0 and stats["sample_logprob_gap"] < 2e-5
    assert stats["reward"] == pytest.approx(0.525) and stats["kl"] == pytest.approx(0.0, abs=1e-6)
    # the value head learnt towards the returns (all positive or zero here): values left zero
    assert values[keep].abs().sum() > 0 and stats["value_loss"] > 0


def test_the_kl_penalty_enters_the_rewards_against_the_reference(tiny_llama_dir):
    policy, rollouts = _setup(tiny_llama_dir, lora_r=4)
    with torch.no_grad():
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    scores = torch.zeros(len(QUESTIONS))
    with_kl = ppo_targets(policy, rollouts, scores, RLSettings(kl_coef=0.5, whiten_advantages=False))
    without = ppo_targets(policy, rollouts, scores, RLSettings(kl_coef=0.0, whiten_advantages=False))
    keep = rollouts.response_mask.bool()
    assert with_kl.kl[keep].abs().max() > 1e-2
    # values start at 0, so with γ = 1 the return of the last token is its own reward −β kl
    last = rollouts.response_mask.sum(1).long() - 1
    rows = torch.arange(len(QUESTIONS))
    assert torch.allclose(with_kl.returns[rows, last], -0.5 * with_kl.kl[rows, last], atol=1e-6)
    assert without.returns.abs().max() == 0


@pytest.mark.parametrize("how", ["sequence", "token"])
def test_micro_batches_give_the_same_update_as_the_whole_mini_batch(tiny_llama_dir, how):
    scores = torch.tensor([1.0, 0.0, 1.0, 0.1])
    updated = []
    for micro in (None, 1, 2):
        policy, rollouts = _setup(tiny_llama_dir, lora_r=0)
        settings = RLSettings(kl_coef=0.1, ppo_epochs=2, lr=1e-3, aggregation=how, micro_batch_size=micro)
        optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=1e-3, weight_decay=0.0)
        torch.manual_seed(1)
        stats = ppo_update(policy, optimizer, rollouts, scores, settings)
        updated.append((torch.cat([p.detach().flatten() for p in policy.trainable_parameters()]), stats))
    (whole, whole_stats), *parts = updated
    for parameters, stats in parts:
        assert (parameters - whole).abs().max() < 1e-5
        for name in ("policy_loss", "value_loss", "clip_fraction", "grad_norm"):
            assert stats[name] == pytest.approx(whole_stats[name], rel=1e-4, abs=1e-6)
    first, _ = _setup(tiny_llama_dir, lora_r=0)
    moved = torch.cat([p.detach().flatten() for p in first.trainable_parameters()])
    assert (whole - moved).abs().max() > 1e-4  # the update did move the weights: the equality is not vacuous
