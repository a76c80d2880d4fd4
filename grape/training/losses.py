"""Training losses as pure functions of per-token (or per-sequence) log-probabilities.

Each takes log-probs that a forward pass already computed (TRL's fused LM head, or
`grape.models.logprobs.token_logprobs`) and returns the loss; none runs a model. Shapes:
``N`` tokens (flattened over rows, in any layout), ``B`` sequences or preference pairs.
Positions that carry no loss are either masked out or have weight 0, and their log-prob may be anything finite.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_mean_nll(logprobs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The ordinary SFT loss: mean negative log-likelihood over the tokens that carry a loss.

    Args:
        logprobs: [...] float log p of each target token.
        mask: [...] bool, True where the token counts (a response token).

    Returns:
        scalar: -Σ_mask ℓ / |mask| (0 when nothing is masked in). TRL's SFTTrainer loss with
        ``loss_type="nll"`` (trl/trainer/sft_trainer.py, ``compute_loss``).
    """
    return -(logprobs * mask).sum() / mask.sum().clamp(min=1)


def token_weighted_nll(logprobs: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Token-weighted NLL normalised over all tokens of the batch: -Σ_t w_t ℓ_t / Σ_t w_t.

    Args:
        logprobs: [N] float log p of each target token.
        weights: [N] float ≥ 0, 0 where a token carries no loss.

    Returns:
        scalar (0 when Σ w = 0). With w = 1 on response tokens it is `token_mean_nll`.
    """
    return -(weights * logprobs).sum() / _positive(weights.sum())


def sequence_weighted_nll(logprobs: torch.Tensor, weights: torch.Tensor, sequence: torch.Tensor) -> torch.Tensor:
    """Token-weighted NLL normalised per sequence, then averaged over sequences (TL-Training's form).

    loss_i = Σ_{t∈i} w_t ℓ_t / Σ_{t∈i} w_t, and the loss is the mean of loss_i over the sequences whose
    total weight is positive (a sequence with all weights 0 carries no loss and does not count).
    TL-Training's key-token loss, (w·Σ_K ℓ + Σ_P ℓ + Σ_O ℓ) / (w·|K| + |P| + |O|) per sample, is this with
    weight w on the key tokens and 1 elsewhere.

    Args:
        logprobs: [N] float log p of each target token.
        weights: [N] float ≥ 0.
        sequence: [N] int64 index of the sequence each token belongs to (0 .. B-1; any order).

    Returns:
        scalar (0 when no sequence has weight).
    """
    size = int(sequence.max()) + 1 if sequence.numel() else 0
    totals = weights.new_zeros(size).index_add(0, sequence, weights)
    sums = logprobs.new_zeros(size).index_add(0, sequence, weights * logprobs)
    counted = totals > 0
    per_sequence = -sums[counted] / totals[counted]
    return per_sequence.sum() / _positive(counted.sum())


def weighted_units(weights: torch.Tensor, sequence: torch.Tensor, per: str) -> torch.Tensor:
    """What a weighted NLL is a mean over: Σ w for ``per="token"``, the sequences of positive weight for
    ``per="sequence"``. Shapes as in `sequence_weighted_nll`; returns a scalar."""
    if per == "token":
        return weights.sum()
    if per == "sequence":
        size = int(sequence.max()) + 1 if sequence.numel() else 0
        return (weights.new_zeros(size).index_add(0, sequence, weights) > 0).sum().to(weights.dtype)
    raise ValueError(f"per must be 'token' or 'sequence', not {per!r}")


def dpo_sigmoid_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float,
) -> torch.Tensor:
    """DPO's sigmoid loss per preference pair.

    -log σ(β · ((π_c − ref_c) − (π_r − ref_r))), as TRL 1.16 computes it for ``loss_type="sigmoid"`` with the
    reverse-KL divergence (trl/trainer/dpo_trainer.py, ``_compute_loss``: ``-F.logsigmoid(self.beta *
    delta_score)``); TRL's loss is the mean of these.

    Args:
        policy_chosen, policy_rejected, reference_chosen, reference_rejected: [B] float summed log-probs of
            each response under the policy and the reference model.
        beta: the strength of the implicit KL penalty (TRL's default 0.1).

    Returns:
        [B] float losses.
    """
    margin = (policy_chosen - reference_chosen) - (policy_rejected - reference_rejected)
    return -F.logsigmoid(beta * margin)


def simpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """SimPO's loss per preference pair: -log σ(β · (c̄ − r̄) − γ), no reference model.

    As TRL 1.16's CPO trainer computes it for ``loss_type="simpo"`` without label smoothing
    (trl/experimental/cpo/cpo_trainer.py, ``cpo_loss``: ``logits - simpo_gamma / beta`` under
    ``-F.logsigmoid(self.beta * logits)``). That trainer adds ``cpo_alpha`` × the chosen responses' NLL
    (default 1.0); SimPO proper sets it to 0, which is this loss alone.

    Args:
        chosen, rejected: [B] float length-normalised log-probs, Σ_t ℓ_t / |y| of each response.
        beta: reward scale (SimPO's paper uses 2.0–2.5); gamma: target reward margin (TRL's default 0.5).

    Returns:
        [B] float losses.
    """
    return -F.logsigmoid(beta * (chosen - rejected) - gamma)


def _positive(count: torch.Tensor) -> torch.Tensor:
    """A divisor that turns 0 / 0 into 0 (a batch without a trainable token) instead of NaN."""
    return torch.where(count > 0, count, torch.ones_like(count))
