"""Attention over a packed row one piece at a time: what flash attention's variable-length kernels give on a
GPU, with PyTorch's SDPA, for the CPU.

A packed row holds several sequences, laid out by their positions:

- a training batch without padding (TRL's padding-free collator): examples whose positions restart at 0;
- the scoring engine's groups (grape/scoring/packing.py): ``[prompt][r1][r2]...`` where the prompt and r1
  count 0, 1, … on, and every later response restarts at the prompt's length P: it continues the first P tokens
  of its example, not the response before it.

transformers' SDPA path turns such a layout into a mask over the **whole row**, so attention costs the row's
square (8 examples: about 8 times the work of the examples alone; 15 responses of one prompt: 15 times) and a
training step keeps [heads, row, row] probabilities for the backward pass (docs/performance.md). This
implementation cuts the row into runs of consecutive positions and runs SDPA on each: a run that starts at 0
attends causally to itself; a run that starts at p > 0 attends to the first p tokens of its example and
causally to itself. The same attention, the sum of the pieces' rectangles.

It is registered with transformers under `SEGMENT_SDPA` (an attention function and its mask function) and used
by `grape sft` for packed batches off a GPU and by the scoring engine on a CPU (`packed_attention`). Anything
it does not cover (a padding mask, a KV cache, a non-causal module) goes to transformers' own SDPA unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

SEGMENT_SDPA = "grape_segment_sdpa"


@dataclass(frozen=True)
class Run:
    """Tokens [start, end) of a row with consecutive positions; they attend to tokens [prefix_start,
    prefix_start + prefix) of the row (the first ``prefix`` tokens of their example, 0 for a new example) and
    causally to themselves."""

    start: int
    end: int
    prefix_start: int
    prefix: int


def segment_bounds(position_ids: torch.Tensor) -> list[tuple[int, int]]:
    """[(start, end)] of each run of consecutive positions in a row (position_ids [T]): a new run begins wherever
    the position does not continue the previous one."""
    t = position_ids.shape[0]
    starts = [0] + (torch.nonzero(position_ids[1:] != position_ids[:-1] + 1).flatten() + 1).tolist()
    return list(zip(starts, [*starts[1:], t], strict=True))


def plan_runs(position_ids: torch.Tensor) -> list[Run]:
    """The runs of a row and what each attends to (position_ids [T], as in the module docstring).

    Raises:
        ValueError: a run starts at p > 0 but its example's first run is shorter than p (or there is none):
            positions that no packed layout produces.
    """
    runs, example_start, first_length = [], 0, 0
    bounds = segment_bounds(position_ids)
    firsts = position_ids[[start for start, _ in bounds]].tolist()
    for (start, end), first in zip(bounds, firsts, strict=True):
        if first == 0:
            example_start, first_length = start, end - start
            runs.append(Run(start, end, start, 0))
        elif start > 0 and first <= first_length:
            runs.append(Run(start, end, example_start, first))
        else:
            raise ValueError(f"positions at {start} continue {first} tokens that the row does not hold before them")
    return runs


def run_mask(length: int, prefix: int, window: int | None, device: torch.device) -> torch.Tensor:
    """[L, prefix + L] bool: query i (position prefix + i) sees key j (position j) when j ≤ prefix + i and, with a
    sliding window, prefix + i − j < ``window`` (transformers' sliding window)."""
    query = torch.arange(prefix, prefix + length, device=device)[:, None]
    offset = query - torch.arange(prefix + length, device=device)[None, :]
    return (offset >= 0) & (offset < window) if window is not None else offset >= 0


def _run_attention(query, key, value, run: Run, window: int | None, dropout: float, scaling: float | None):
    """SDPA of one run's queries [1, H, L, D] over its prefix and itself; [1, H, L, D]."""
    length = run.end - run.start
    q = query[:, :, run.start : run.end]
    if run.prefix:
        prefix = slice(run.prefix_start, run.prefix_start + run.prefix)
        k = torch.cat([key[:, :, prefix], key[:, :, run.start : run.end]], dim=2)
        v = torch.cat([value[:, :, prefix], value[:, :, run.start : run.end]], dim=2)
    else:
        k, v = key[:, :, run.start : run.end], value[:, :, run.start : run.end]
    if run.prefix == 0 and (window is None or length <= window):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, scale=scaling)
    mask = run_mask(length, run.prefix, window, query.device)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout, scale=scaling)


@torch.compiler.disable  # data-dependent cuts: a compiled decoder runs this eagerly between its fused regions
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
    """Attention of each run of each row on what its positions say it sees (`plan_runs`).

    Args:
        query: [B, H, T, D]; key, value: [B, H_kv, T, D] (grouped-query heads are repeated to H).
        attention_mask: None here (the mask function returns none without padding or cache); given: the SDPA
            fallback.
        kwargs: ``position_ids`` [B, T] lay out the rows; ``sliding_window`` from the module's call or attribute.

    Returns:
        ([B, T, H, D], None), as transformers' attention functions return.
    """
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    position_ids = kwargs.get("position_ids")
    covered = (attention_mask is None and position_ids is not None and position_ids.dim() <= 2
               and query.shape[2] == key.shape[2] and kwargs.get("softcap") is None
               and getattr(module, "is_causal", True))  # fmt: skip
    if not covered:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)  # fmt: skip
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    window = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
    positions = position_ids.reshape(-1, position_ids.shape[-1])[:, -query.shape[2] :].expand(query.shape[0], -1)
    rows = []
    for b in range(query.shape[0]):
        q, k, v = query[b : b + 1], key[b : b + 1], value[b : b + 1]
        pieces = [_run_attention(q, k, v, run, window, dropout, scaling) for run in plan_runs(positions[b])]
        rows.append(torch.cat(pieces, dim=2))
    return torch.cat(rows).transpose(1, 2).contiguous(), None


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
def packed_attention(model: Any) -> Iterator[bool]:
    """Within the block, a model that attends with SDPA attends run by run (`segment_sdpa_forward`); any other
    implementation (eager, flash attention) is left as it is. Yields whether the switch was made; the model's own
    implementation comes back after."""
    config = model.config
    before = getattr(config, "_attn_implementation", None)
    if before != "sdpa":
        yield False
        return
    register()
    model.set_attn_implementation(SEGMENT_SDPA)
    try:
        yield True
    finally:
        model.set_attn_implementation(before)
