"""The arithmetic of PPO with a value head (ReFT's recipe), as pure functions on padded response tensors.

Shapes: ``B`` sequences, ``T`` response positions. ``mask`` [B, T] is 1 on a prefix of each row (the response
tokens, its EOS included) and 0 on the padding after it; every row has at least one response token. Position
``t`` holds what belongs to response token ``t``: its log-prob under the policy, the value of the state that
emitted it, its reward.
"""

from __future__ import annotations

import torch

from grape.rl.aggregations import AGGREGATIONS


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over the positions where ``mask`` is 1 (any shape, one scalar)."""
    return (x * mask).sum() / mask.sum()


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x`` shifted and scaled so that its masked mean is 0 and its masked (population) variance 1.

    Masked-out positions come back as 0. ``x``, ``mask``: [B, T].
    """
    mean = masked_mean(x, mask)
    variance = masked_mean((x - mean) ** 2, mask)
    return (x - mean) * torch.rsqrt(variance + eps) * mask


def last_token_index(mask: torch.Tensor) -> torch.Tensor:
    """[B] the index of each row's last response token: its EOS, or the last position when it was cut."""
    return mask.sum(dim=1).long() - 1


def kl_shaped_rewards(
    score: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-token rewards r_t = −β (log π − log π_ref), plus the verifier's score on the last response token.

    Args:
        score: [B] the sequence-level reward (ReFT: 1, 0.1 or 0).
        logprobs, ref_logprobs: [B, T] log-probs of the response tokens under the policy and the reference.
        mask: [B, T].
        kl_coef: β.

    Returns:
        (rewards [B, T], kl [B, T]), both 0 on masked-out positions; kl = log π − log π_ref.
    """
    kl = (logprobs - ref_logprobs) * mask
    rewards = -kl_coef * kl
    rows = torch.arange(score.shape[0], device=score.device)
    rewards[rows, last_token_index(mask)] += score.to(rewards.dtype)
    return rewards, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation, a reverse loop over time vectorised over the batch.

    δ_t = r_t + γ V_{t+1} − V_t and A_t = δ_t + γλ A_{t+1}, where V and A past a row's last token are 0 (the
    episode ends with the response).

    Args:
        rewards, values, mask: [B, T].

    Returns:
        (advantages [B, T], returns [B, T] = advantages + values), 0 on masked-out positions.
    """
    rewards, values = rewards * mask, values * mask
    advantages = torch.zeros_like(rewards)
    next_value = torch.zeros_like(rewards[:, 0])
    next_advantage = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        # a masked-out next position (past the end) contributes nothing: values and advantages there are 0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantages[:, t] = (delta + gamma * lam * next_advantage) * mask[:, t]
        next_value, next_advantage = values[:, t], advantages[:, t]
    return advantages, (advantages + values) * mask


def aggregate(per_token: torch.Tensor, mask: torch.Tensor, how: str) -> torch.Tensor:
    """One scalar from [B, T] per-token losses: ``sequence`` = the mean over sequences of each sequence's token
    mean (ReFT: every sequence weighs the same); ``token`` = the mean over all response tokens (TL-Training)."""
    if how == "sequence":
        return ((per_token * mask).sum(dim=1) / mask.sum(dim=1)).mean()
    if how == "token":
        return masked_mean(per_token, mask)
    raise ValueError(f"unknown aggregation '{how}': use one of {', '.join(AGGREGATIONS)}")


def micro_batch_weight(part_mask: torch.Tensor, whole_mask: torch.Tensor, how: str) -> float:
    """The weight of a micro-batch's aggregated loss in its mini-batch's: Σ over micro-batches of weight × loss
    equals the mini-batch's loss. ``token``: its share of the response tokens; ``sequence``: its share of the
    sequences. Args: part_mask [b, T] (rows of) whole_mask [B, T]."""
    if how == "sequence":
        return part_mask.shape[0] / whole_mask.shape[0]
    if how == "token":
        return float(part_mask.sum() / whole_mask.sum())
    raise ValueError(f"unknown aggregation '{how}': use one of {', '.join(AGGREGATIONS)}")


def policy_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    how: str = "sequence",
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO-clip: max(−A ρ, −A clip(ρ, 1−ε, 1+ε)) per token, ρ = exp(log π − log π_old), aggregated by ``how``.

    Args: [B, T] each. Returns (loss, the fraction of response tokens whose clipped term won).
    """
    ratio = torch.exp(logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    loss = aggregate(torch.maximum(unclipped, clipped), mask, how)
    return loss, masked_mean((clipped > unclipped).float(), mask)


def value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip: float = 0.2,
    how: str = "sequence",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped value loss: ½ max((V − R)², (V_old + clip(V − V_old, −c, c) − R)²), aggregated by ``how``.

    Args: [B, T] each. Returns (loss, the fraction of response tokens whose clipped term won).
    """
    clipped_values = old_values + torch.clamp(values - old_values, -clip, clip)
    unclipped = (values - returns) ** 2
    clipped = (clipped_values - returns) ** 2
    loss = 0.5 * aggregate(torch.maximum(unclipped, clipped), mask, how)
    return loss, masked_mean((clipped > unclipped).float(), mask)


def ppo_loss(policy: torch.Tensor, value: torch.Tensor, value_coef: float) -> torch.Tensor:
    """The total loss: policy + c_v × value (ReFT: c_v = 5)."""
    return policy + value_coef * value
