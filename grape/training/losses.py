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


def discounted_suffix_sum(values: torch.Tensor, sequence: torch.Tensor, gamma: float) -> torch.Tensor:
    """y_i = Σ_{j ≥ i in i's sequence} γ^(j−i) x_j: each position's discounted sum of what follows it, itself included.

    Never crosses a sequence end. γ = 1 is the plain suffix sum; γ = 0 returns ``values``.

    Args:
        values: [N] float, positions in order; a sequence's positions are consecutive (a row-major flattened
            padded batch, or a padding-free row of concatenated sequences).
        sequence: [N] int64, the sequence of each position (equal within a run of consecutive positions).
        gamma: the discount, in [0, 1].

    Returns:
        [N] float, differentiable in ``values``. Memory: one [L, L] matrix of discounts, L the longest sequence.
    """
    _, counts = torch.unique_consecutive(sequence, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    row = torch.repeat_interleave(torch.arange(len(counts), device=values.device), counts)
    column = torch.arange(len(values), device=values.device) - starts[row]
    width = int(counts.max()) if len(counts) else 0
    laid_out = values.new_zeros(len(counts), width).index_put((row, column), values)  # [S, L]
    distance = torch.arange(width, device=values.device)
    distance = distance[None, :] - distance[:, None]  # [L, L]: j − i
    discount = torch.zeros(distance.shape, dtype=values.dtype, device=values.device)
    ahead = distance >= 0
    discount[ahead] = 1.0 if gamma == 1 else float(gamma) ** distance[ahead].to(values.dtype)
    return (laid_out @ discount.T)[row, column]


def ift_token_weights(nll: torch.Tensor, mask: torch.Tensor, sequence: torch.Tensor, gamma: float) -> torch.Tensor:
    """IFT's relation-propagation weights (Hua et al. 2024): each loss token weighs the discounted sum of the
    losses from it to its sequence's end, normalised to mean 1 over the sequence's loss tokens ("L1").

    w_t = n_s · S_t / Σ_{k∈s} S_k with S_t = Σ_{j ≥ t} γ^(j−t) ℓ_j (ℓ = 0 off the mask), n_s the loss tokens of
    t's sequence s; 0 off the mask. An early token that leads into a costly continuation weighs more. γ = 0
    turns the propagation off (all weights 1), as the official code does (``get_cumsum_weight`` returns ones
    for ``gamma == 0``; its defaults ``propagation_type=loss, propagation_side=left, propagation_norm=L1`` are
    this function). The weights are not detached: as in the official code, the gradient flows through them.

    Args:
        nll: [N] float ≥ 0, the negative log-likelihood of each target token (any value off the mask).
        mask: [N] bool, True on the tokens that carry a loss.
        sequence: [N] int64, as in `discounted_suffix_sum`.
        gamma: the discount, in [0, 1] (IFT's default 0.95).

    Returns:
        [N] float weights, mean 1 over each sequence's loss tokens.
    """
    mask = mask.to(nll.dtype)
    if gamma == 0:
        return mask
    suffix = discounted_suffix_sum(nll * mask, sequence, gamma) * mask
    size = int(sequence.max()) + 1 if sequence.numel() else 0
    counts = mask.new_zeros(size).index_add(0, sequence, mask)
    totals = suffix.new_zeros(size).index_add(0, sequence, suffix)
    return suffix * counts[sequence] / _positive(totals)[sequence]


def ift_nll(logprobs: torch.Tensor, mask: torch.Tensor, sequence: torch.Tensor, gamma: float) -> torch.Tensor:
    """IFT's loss: per sequence Σ_t w_t ℓ_t / n_s with `ift_token_weights`, then the mean over sequences.

    Since the weights average 1 per sequence this is `sequence_weighted_nll` with those weights, and with
    γ = 0 (all weights 1) the per-sequence mean NLL. Shapes as in `ift_token_weights`; ``logprobs`` [N] are
    the log-probabilities of the target tokens (any finite value off the mask). Returns a scalar.
    """
    weights = ift_token_weights(-logprobs, mask, sequence, gamma)
    return sequence_weighted_nll(logprobs, weights, sequence)


def _positive(count: torch.Tensor) -> torch.Tensor:
    """A divisor that turns 0 / 0 into 0 (a batch without a trainable token) instead of NaN."""
    return torch.where(count > 0, count, torch.ones_like(count))
