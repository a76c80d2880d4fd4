"""Per-token log-probabilities from hidden states, without materialising [tokens, vocab] at once.

For Gemma 3 the vocabulary has 262,144 entries: full float32 logits cost 1 MiB per token. Here the
LM head runs on a chunk of rows at a time, and each chunk is reduced to one number per row (target
logit minus logsumexp, accumulated in float32) before the next chunk starts.
"""

from __future__ import annotations

import torch


def chunk_rows_for(vocab_size: int, budget_bytes: int = 256 * 2**20) -> int:
    """How many rows of logits fit in ``budget_bytes`` (model-dtype logits plus their float32 copy)."""
    return max(1, budget_bytes // (vocab_size * 6))


def token_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    softcap: float | None = None,
    scale: float = 1.0,
    chunk_rows: int = 1024,
) -> torch.Tensor:
    """log p(target_i | hidden_i) for each row.

    Args:
        hidden: [N, H] final hidden states (after the model's last norm), model dtype.
        weight: [V, H] LM head weight; bias: [V] or None.
        targets: [N] token ids to score.
        softcap: Gemma-style final logit soft-capping ``c * tanh(logits / c)``; None for none.
        scale: multiplies the logits before soft-capping (Cohere's logit_scale, 1/Granite's logits_scaling).
        chunk_rows: rows per LM-head matmul; bounds peak memory at chunk_rows * V * 6 bytes.

    Returns:
        [N] float32 log-probabilities.
    """
    out = torch.empty(hidden.shape[0], dtype=torch.float32, device=hidden.device)
    for start in range(0, hidden.shape[0], chunk_rows):
        stop = min(start + chunk_rows, hidden.shape[0])
        logits = torch.nn.functional.linear(hidden[start:stop], weight, bias).float()
        if scale != 1.0:
            logits.mul_(scale)
        if softcap is not None:
            logits.div_(softcap).tanh_().mul_(softcap)
        target_logits = logits.gather(1, targets[start:stop, None]).squeeze(1)
        out[start:stop] = target_logits - torch.logsumexp(logits, dim=-1)
    return out


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
