"""Attention over a packed row one example at a time: what flash attention's variable-length kernels give on a
GPU, with PyTorch's SDPA, for the CPU.

A padding-free training batch is one row holding several examples whose positions restart at 0. transformers'
SDPA path turns the restarts into a block-diagonal mask over the **whole row**, so attention costs the row's
square (8 examples: about 8 times the work of the examples alone) and keeps [heads, row, row] probabilities for
the backward pass (docs/performance.md, "Packed SFT batches on a CPU"). This implementation cuts the row at
each restart and runs causal SDPA on each example alone: the same attention, the sum of the examples' squares.

It is registered with transformers under `SEGMENT_SDPA` (an attention function and its mask function) and used
by `grape sft` for packed batches off a GPU (`packed_attention`). Anything it does not cover (a padding mask, a
KV cache, several rows, soft-capping) goes to transformers' own SDPA function unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import torch.nn.functional as F

SEGMENT_SDPA = "grape_segment_sdpa"


def segment_bounds(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """[(start, end)] of each example in a packed row: a new example begins wherever the position does not
    continue the previous one (position_ids [T], as TRL's padding-free collator lays them out)."""
    t = position_ids.shape[0]
    starts = [0] + (torch.nonzero(position_ids[1:] != position_ids[:-1] + 1).flatten() + 1).tolist()
    return list(zip(starts, [*starts[1:], t], strict=True))


def window_mask(length: int, window: int, device: torch.device) -> torch.Tensor:
    """[L, L] bool: query i sees key j when j ≤ i and i − j < ``window`` (transformers' sliding window)."""
    i = torch.arange(length, device=device)
    offset = i[:, None] - i[None, :]
    return (offset >= 0) & (offset < window)


def segment_sdpa_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """Causal attention of each example of a packed row on its own.

    Args:
        query: [1, H, T, D]; key, value: [1, H_kv, T, D] (grouped-query heads are repeated to H).
        attention_mask: None here (the mask function returns none for a packed row); given: the SDPA fallback.
        kwargs: ``position_ids`` [1, T] mark the examples; ``sliding_window`` is read from ``module``.

    Returns:
        ([1, T, H, D], None), as transformers' attention functions return.
    """
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    covered = (attention_mask is None and position_ids is not None and query.shape[0] == 1
               and query.shape[2] == key.shape[2] and kwargs.get("softcap") is None
               and getattr(module, "is_causal", True))  # fmt: skip
    if not covered:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)  # fmt: skip
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    window = getattr(module, "sliding_window", None)
    pieces = []
    for start, end in segment_bounds(position_ids.reshape(-1)[-query.shape[2] :]):
        q, k, v = query[:, :, start:end], key[:, :, start:end], value[:, :, start:end]
        if window is not None and end - start > window:
            mask = window_mask(end - start, window, query.device)
            pieces.append(F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scaling))
        else:
            pieces.append(F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=scaling))
    return torch.cat(pieces, dim=2).transpose(1, 2).contiguous(), None


def segment_mask(
    *, q_length: int, kv_length: int, q_offset: int = 0, kv_offset: int = 0,
    attention_mask: torch.Tensor | None = None, **kwargs: Any,
) -> torch.Tensor | None:  # fmt: skip
    """No mask where `segment_sdpa_forward` does the masking itself: no padding and no cached keys before the
    queries (it finds the examples from the positions). Anywhere else (padding, a cache: decoding, a prefill in
    chunks) transformers' SDPA mask, which its SDPA fallback needs."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None and q_length == kv_length and q_offset == kv_offset == 0:
        return None
    return sdpa_mask(q_length=q_length, kv_length=kv_length, q_offset=q_offset, kv_offset=kv_offset,
                     attention_mask=attention_mask, **kwargs)  # fmt: skip


def register() -> None:
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(SEGMENT_SDPA, segment_sdpa_forward)
    AttentionMaskInterface.register(SEGMENT_SDPA, segment_mask)


@contextmanager
def packed_attention(model: Any) -> Iterator[None]:
    """Within the block, a model that attends with SDPA attends per example (`segment_sdpa_forward`); any other
    implementation (eager, flash attention) is left as it is. The model's own implementation comes back after."""
    config = model.config
    before = getattr(config, "_attn_implementation", None)
    if before != "sdpa":
        yield
        return
    register()
    model.set_attn_implementation(SEGMENT_SDPA)
    try:
        yield
    finally:
        model.set_attn_implementation(before)
