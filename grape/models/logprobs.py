"""Per-token log-probabilities from hidden states, without materialising [tokens, vocab] at once.

For Gemma 3 the vocabulary has 262,144 entries: full float32 logits cost 1 MiB per token. Two ways,
chosen by whether gradients are wanted:

- Inference (scoring, reference passes, rollouts' old log-probs): the LM head runs on a block of rows
  and a *tile* of the vocabulary at a time, and each tile is folded into a running log-sum-exp
  (running max, running sum of exp). On a CPU a 2,048-entry tile keeps every elementwise pass (upcast,
  max, exp, sum) in cache, with no allocation per tile; measured in docs/performance.md (the LM head of
  the default benchmark 1.5x faster in fp32, 2x in bf16, than a whole-vocabulary chunk). On a GPU the
  tile is the whole vocabulary (one matmul per block). The target's logit is its own dot product in
  float32, so a bf16 model's log-probabilities are reduced in float32 throughout.
- Training: a chunk of rows at a time over the whole vocabulary, differentiable (no in-place work).
"""

from __future__ import annotations

import torch

CPU_VOCAB_TILE = 2048  # vocabulary entries per LM-head tile on a CPU (docs/performance.md: 2,048 over 4,096 on AVX-512)


def chunk_rows_for(width: int, budget_bytes: int = 256 * 2**20) -> int:
    """How many rows of ``width`` logits fit in ``budget_bytes`` (model-dtype logits plus a float32 copy)."""
    return max(1, budget_bytes // (width * 6))


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
        chunk_rows: rows per block; peak memory is chunk_rows * vocab_tile * 6 bytes.
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
    """[n] float32 log-sum-exp of the logits of ``rows`` [n, H], one vocabulary tile at a time."""
    bias, softcap, scale = head
    n, vocab = rows.shape[0], weight.shape[0]
    raw = torch.empty(n * tile, dtype=rows.dtype, device=rows.device)  # the tile's linear output
    upcast = raw if rows.dtype == torch.float32 else torch.empty(n * tile, dtype=torch.float32, device=rows.device)
    running_max = torch.full((n,), float("-inf"), dtype=torch.float32, device=rows.device)
    running_sum = torch.zeros(n, dtype=torch.float32, device=rows.device)
    for first in range(0, vocab, tile):
        last = min(first + tile, vocab)
        logits = torch.mm(rows, weight[first:last].t(), out=raw[: n * (last - first)].view(n, last - first))
        if upcast is not raw:
            logits = upcast[: logits.numel()].view_as(logits).copy_(logits)
        if bias is not None:
            logits.add_(bias[first:last])
        logits = _capped(logits, softcap, scale)
        new_max = torch.maximum(running_max, logits.amax(dim=1))
        running_sum.mul_(torch.exp(running_max - new_max)).add_(logits.sub_(new_max[:, None]).exp_().sum(dim=1))
        running_max = new_max
    return running_max + running_sum.log()


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
    return {
        "weight": head.weight,
        "bias": getattr(head, "bias", None),
        "softcap": getattr(config, "final_logit_softcapping", None),
        "scale": scale,
    }
