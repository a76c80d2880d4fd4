"""The arithmetic of one guided step: Q̂ from rollout rewards, the step scores, and the choice.

Shapes: ``k`` candidates (the top-k next tokens), ``m`` rollouts per candidate.

Transfer Q* estimates Q(s, z) of the *target* reward r with rollouts τ of a baseline ρ_BL:
- direct transfer (ρ_BL aligned to r itself): Q̂(s, z) = mean_τ r([s, z, τ]);
- indirect transfer (ρ_BL aligned to another reward r_BL): the rollouts are re-weighted towards the
  policy aligned to r, Q̂(s, z) = mean_τ exp((r − r_BL) / β) · r, β the alignment's KL weight (the released
  code multiplies Δr by 0.5: β = 2).
The step then takes argmax_z log π(z | s) + α · Q̂(s, z) (or samples from its softmax at a temperature).
ARGS (Khanov et al., 2024) is the same step with Q̂ replaced by r([s, z]), the reward of the prefix.
"""

from __future__ import annotations

import torch


def direct_q(rewards: torch.Tensor) -> torch.Tensor:
    """Q̂ of direct transfer.

    Args:
        rewards: [k, m] float, r([s, z_i, τ_ij]) of rollout j of candidate i.

    Returns:
        [k] float32, the mean over rollouts.
    """
    return rewards.float().mean(dim=1)


def indirect_q(rewards: torch.Tensor, baseline_rewards: torch.Tensor, beta: float) -> torch.Tensor:
    """Q̂ of indirect transfer: mean_j exp((r_ij − r_BL,ij) / β) · r_ij.

    Args:
        rewards: [k, m] float, the target reward r of each rollout.
        baseline_rewards: [k, m] float, r_BL of the same rollouts.
        beta: > 0, the KL weight of the alignment the importance weight undoes.

    Returns:
        [k] float32 (float64 inside, so that large reward gaps do not overflow before the product).
    """
    r, r_bl = rewards.double(), baseline_rewards.double()
    return (torch.exp((r - r_bl) / beta) * r).mean(dim=1).float()


def step_scores(logprobs: torch.Tensor, values: torch.Tensor | None, alpha: float) -> torch.Tensor:
    """log π(z | s) + α · value(z) for each candidate; with α = 0 (or no values) the prior alone.

    Args:
        logprobs: [k] float, log π of each candidate under the prior model.
        values: [k] float (Q̂ or r), or None.
        alpha: the weight of the values.

    Returns:
        [k] float32.
    """
    if values is None or alpha == 0:  # no reward term: not even a non-finite value can change the order
        return logprobs.float().clone()
    return logprobs.float() + alpha * values.float().to(logprobs.device)


def choose(scores: torch.Tensor, mode: str, temperature: float, generator: torch.Generator | None) -> int:
    """The index of the chosen candidate: the first best score (``greedy``), or a draw from softmax(scores / T).

    Args:
        scores: [k] float32, candidates in the prior's order (best prior first, so a tie keeps the prior's pick).
    """
    if mode == "greedy":
        return int(torch.argmax(scores).item())
    probabilities = torch.softmax(scores.double() / temperature, dim=0)
    return int(torch.multinomial(probabilities, 1, generator=generator).item())
