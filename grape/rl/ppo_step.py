"""One PPO update on a batch of scored rollouts: old log-probs and values, KL-shaped rewards, GAE, then
``ppo_epochs`` passes of clipped policy + value loss over mini-batches."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grape.rl.policy import Policy, response_logprobs_and_values
from grape.rl.ppo_math import (
    gae,
    kl_shaped_rewards,
    masked_mean,
    masked_whiten,
    micro_batch_weight,
    policy_loss,
    ppo_loss,
    value_loss,
)
from grape.rl.rollout import Rollouts
from grape.rl.settings import RLSettings


@dataclass
class Targets:
    """What the update fits, fixed before its first step. All [B, R]."""

    old_logprobs: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    kl: torch.Tensor  # log π − log π_ref per token


@torch.no_grad()
def ppo_targets(policy: Policy, rollouts: Rollouts, scores: torch.Tensor, settings: RLSettings) -> Targets:
    """Old log-probs and values from the training forward pass, reference log-probs, rewards and advantages."""
    mask = rollouts.response_mask
    old_logprobs, old_values = response_logprobs_and_values(policy.model, policy.value_head, rollouts)
    with policy.reference() as reference:
        ref_logprobs, _ = response_logprobs_and_values(reference, None, rollouts)
    rewards, kl = kl_shaped_rewards(scores.to(mask.device), old_logprobs, ref_logprobs, mask, settings.kl_coef)
    advantages, returns = gae(rewards, old_values, mask, settings.gamma, settings.lam)
    if settings.whiten_advantages:
        advantages = masked_whiten(advantages, mask)
    return Targets(old_logprobs, old_values, advantages, returns, kl)


def ppo_update(
    policy: Policy, optimizer: torch.optim.Optimizer, rollouts: Rollouts, scores: torch.Tensor, settings: RLSettings
) -> dict[str, float]:
    """Fit ``policy`` to one rollout batch; returns the batch's statistics (means over its mini-batch steps).

    Mini-batches are drawn in an order from torch's global generator (saved in every checkpoint). Each goes through
    the model ``micro_batch_size`` rollouts at a time, its gradients accumulated with weights that make the sum
    the mini-batch's own loss (`micro_batch_weight`): the same update in less memory.
    """
    targets = ppo_targets(policy, rollouts, scores, settings)
    size = rollouts.response_ids.shape[0]
    mini = settings.mini_batch_size or size
    micro = settings.micro_batch_size or mini
    parameters = policy.trainable_parameters()
    logged: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "clip_fraction": [], "grad_norm": []}
    for _ in range(settings.ppo_epochs):
        order = torch.randperm(size) if mini < size else torch.arange(size)
        for start in range(0, size, mini):
            rows = order[start : start + mini].to(rollouts.response_ids.device)
            optimizer.zero_grad(set_to_none=True)
            sums = torch.zeros(3)  # policy loss, value loss, clip fraction of the mini-batch
            for part in rows.split(micro):  # gradients accumulate: the mini-batch's update, a micro-batch in memory
                weight = micro_batch_weight(rollouts.response_mask[part], rollouts.response_mask[rows],
                                            settings.aggregation)  # fmt: skip
                batch, mask = rollouts.select(part), rollouts.response_mask[part]
                logprobs, values = response_logprobs_and_values(policy.model, policy.value_head, batch)
                p_loss, clipped = policy_loss(logprobs, targets.old_logprobs[part], targets.advantages[part], mask,
                                              settings.clip_ratio, settings.aggregation)  # fmt: skip
                v_loss, _ = value_loss(values, targets.old_values[part], targets.returns[part], mask,
                                       settings.clip_value, settings.aggregation)  # fmt: skip
                (weight * ppo_loss(p_loss, v_loss, settings.value_coef)).backward()
                share = float(mask.sum() / rollouts.response_mask[rows].sum())  # the clip fraction is per token
                sums += torch.tensor([weight * p_loss.item(), weight * v_loss.item(), share * float(clipped)])
            norm = torch.nn.utils.clip_grad_norm_(parameters, settings.max_grad_norm)
            optimizer.step()
            for name, value in zip(logged, (*sums.tolist(), float(norm)), strict=True):
                logged[name].append(value)
    mask = rollouts.response_mask
    return {
        "reward": float(scores.float().mean()),
        "kl": float(targets.kl.sum(dim=1).mean()),  # per sequence, summed over its tokens
        "response_tokens": float(mask.sum(dim=1).mean()),
        "value": float(masked_mean(targets.old_values, mask)),
        **{name: sum(values) / len(values) for name, values in logged.items()},
        # the training pass must reproduce the sampler's log-probs; a gap means a padding or position bug
        "sample_logprob_gap": float(((targets.old_logprobs - rollouts.sample_logprobs).abs() * mask).max()),
    }
