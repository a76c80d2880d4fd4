"""Per-token log-probabilities from hidden states, without materialising [tokens, vocab] at once.

For Gemma 3 the vocabulary has 262,144 entries: full float32 logits cost 1 MiB per token. Two ways,
chosen by whether gradients are wanted:

- Inference (scoring, reference passes, rollouts' old log-probs): the LM head runs on a block of rows
  and a *tile* of the vocabulary at a time; one fused log-softmax gives each tile's log-sum-exp, and the
  tiles' are merged at the end. On a CPU a 2,048-entry tile keeps that pass in cache, with no allocation
  per tile; measured in docs/performance.md (the LM head of the default benchmark 1.5x faster in fp32,
  2x in bf16, than a whole-vocabulary chunk). On a GPU the tile is the whole vocabulary (one matmul per
  block). The target's logit is its own dot product in float32, so a bf16 model's log-probabilities are
  reduced in float32 throughout.
- Training: a chunk of rows at a time over the whole vocabulary, differentiable (no in-place work).
"""

from __future__ import annotations

import torch

from grape.errors import GrapeError

CPU_VOCAB_TILE = 2048  # vocabulary entries per LM-head tile on a CPU (docs/performance.md: 2,048 over 4,096 on AVX-512)


def chunk_rows_for(width: int, budget_bytes: int = 256 * 2**20, bytes_per_logit: int = 6) -> int:
    """How many rows of ``width`` logits fit in ``budget_bytes``; ``bytes_per_logit``: `logit_bytes` (default:
    bfloat16 logits and their float32 log-softmax, or the training path's float32 copy)."""
    return max(1, budget_bytes // (width * bytes_per_logit))


def logit_bytes(dtype: torch.dtype, transformed: bool = False) -> int:
    """Memory per logit of `token_logprobs` without gradients: the tile's linear output in the model's dtype,
    its float32 log-softmax and, for a bias, scale or soft-cap on a lower-precision model, a float32 copy."""
    size = torch.empty(0, dtype=dtype).element_size()
    return size + 4 + (4 if transformed and dtype != torch.float32 else 0)


def vocab_tile_for(vocab_size: int, device: torch.device) -> int:
    """Vocabulary entries per tile: cache-sized on a CPU, the whole vocabulary elsewhere."""
    return min(vocab_size, CPU_VOCAB_TILE) if device.type == "cpu" else vocab_size


def token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    scale: float = 1.0,
    chunk_rows: int = 1024,
    vocab_tile: int | None = None,
) -> torch.Tensor:
    """log p(target_i | hidden_i) for each row.

    Args:
        hidden: [N, H] final hidden states (after the model's last norm), model dtype.
        weight: [V, H] LM head weight; bias: [V] or None.
        targets: [N] token ids to score.
        softcap: Gemma-style final logit soft-capping ``c * tanh(logits / c)``; None for none.
        scale: multiplies the logits before soft-capping (Cohere's logit_scale, 1/Granite's logits_scaling).
        chunk_rows: rows per block; peak memory is chunk_rows * vocab_tile * `logit_bytes`.
        vocab_tile: vocabulary entries per LM-head matmul (inference only); None: `vocab_tile_for`.

    Returns:
        [N] float32 log-probabilities.
    """
    head = (bias, softcap, scale)
    if torch.is_grad_enabled() and (hidden.requires_grad or weight.requires_grad):
        return _differentiable_logprobs(hidden, weight, targets, head, chunk_rows)
    tile = vocab_tile or vocab_tile_for(weight.shape[0], weight.device)
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], chunk_rows):
        stop = min(start + chunk_rows, hidden.shape[0])
        rows, row_targets = hidden[start:stop], targets[start:stop]
        target_logits = _capped(_target_logits(rows, weight, row_targets, bias), softcap, scale)
        out[start:stop] = target_logits - _logsumexp_by_tiles(rows, weight, head, tile)
    return out


def _target_logits(
    rows: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    """[n] float32: each row's dot product with its target's head row (plus bias), before scaling."""
    logits = torch.einsum("nh,nh->n", rows.float(), weight[targets].float())
    return logits if bias is None else logits + bias[targets].float()


def _capped(logits: torch.Tensor, softcap: float | None, scale: float) -> torch.Tensor:
    """The model's logits from the head's linear output, in place: ``scale``, then soft-capping."""
    if scale != 1.0:
        logits.mul_(scale)
    if softcap is not None:
        logits.div_(softcap).tanh_().mul_(softcap)
    return logits


def _logsumexp_by_tiles(rows: torch.Tensor, weight: torch.Tensor, head: tuple, tile: int) -> torch.Tensor:
    """[n] float32 log-sum-exp of the logits of ``rows`` [n, H], one vocabulary tile at a time.

    Each tile's log-sum-exp comes out of one fused log-softmax (the row's max, its sum of exponentials and the
    output in one kernel, where separate max / subtract / exp / sum passes read the tile four times): for any
    column j, ``logsumexp(x) = x_j - log_softmax(x)_j``; column 0 is used. Its float32 rounding is that of
    ``|x_0 - logsumexp(x)|``: ~4e-6 for a logit 50 nats under the tile's log-sum-exp. The tiles' log-sum-exps
    are merged by one log-sum-exp at the end. Logits must be finite (`head_settings` refuses a bias of -inf).
    """
    bias, softcap, scale = head
    n, vocab = rows.shape[0], weight.shape[0]
    transformed = bias is not None or softcap is not None or scale != 1.0
    raw = torch.empty(n * tile, dtype=rows.dtype, device=rows.device)  # the tile's linear output
    softmaxed = torch.empty(n * tile, dtype=torch.float32, device=rows.device)  # its log-softmax
    upcast = raw  # a bias, scale or soft-cap is applied in float32
    if transformed and rows.dtype != torch.float32:
        upcast = torch.empty(n * tile, dtype=torch.float32, device=rows.device)
    starts = range(0, vocab, tile)
    tile_lse = torch.empty(n, len(starts), dtype=torch.float32, device=rows.device)
    for i, first in enumerate(starts):
        width = min(first + tile, vocab) - first
        logits = torch.mm(rows, weight[first : first + width].t(), out=raw[: n * width].view(n, width))
        if upcast is not raw:
            logits = upcast[: n * width].view(n, width).copy_(logits)
        if bias is not None:
            logits.add_(bias[first : first + width])
        logits = _capped(logits, softcap, scale) if transformed else logits
        out = softmaxed[: n * width].view(n, width)
        torch.log_softmax(logits, dim=1, dtype=torch.float32, out=out)
        tile_lse[:, i] = logits[:, 0].float() - out[:, 0]
    return torch.logsumexp(tile_lse, dim=1)


def _differentiable_logprobs(
    hidden: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, head: tuple, chunk_rows: int
) -> torch.Tensor:
    bias, softcap, scale = head
    out = []
    for start in range(0, hidden.shape[0], chunk_rows):
        stop = min(start + chunk_rows, hidden.shape[0])
        logits = torch.nn.functional.linear(hidden[start:stop], weight, bias).float() * scale
        if softcap is not None:
            logits = softcap * torch.tanh(logits / softcap)
        target_logits = logits.gather(1, targets[start:stop, None]).squeeze(1)
        out.append(target_logits - torch.logsumexp(logits, dim=-1))
    return torch.cat(out) if out else hidden.new_zeros(0, dtype=torch.float32)


def head_settings(model) -> dict:
    """The LM head of a transformers causal LM as keyword arguments of `token_logprobs`."""
    head = model.get_output_embeddings()
    config = model.config
    scale = float(getattr(config, "logit_scale", None) or 1.0)
    if getattr(config, "logits_scaling", None):
        scale /= float(config.logits_scaling)
    bias = getattr(head, "bias", None)
    if bias is not None and not bool(torch.isfinite(bias).all()):  # a tile's log-sum-exp needs finite logits
        raise GrapeError("the model's LM head has a bias with infinite or NaN entries; grape's scorer needs finite "
                         "logits (mask tokens after scoring instead)")  # fmt: skip
    return {
        "weight": head.weight,
        "bias": bias,
        "softcap": getattr(config, "final_logit_softcapping", None),
        "scale": scale,
    }
