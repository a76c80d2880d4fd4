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

Without gradients on a CPU (the scoring engine), an example whose responses all continue its prompt attends as a
cascade: one flash-attention call for the prompt and all its responses over the prompt's keys (SDPA's top-left
causal alignment is exactly "the prompt causally, every response all of it"), then each response causally over
itself, the two merged by their log-sum-exps (`merge_attention`); no key or value is concatenated. Where a sliding
window binds, or gradients are wanted, each run attends on its own as above.

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

from grape.models.attention_implementation import attending_with

SEGMENT_SDPA = "grape_segment_sdpa"
_FLASH_CPU = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)  # (out, log-sum-exp)


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


def examples_of(runs: list[Run]) -> list[list[Run]]:
    """The runs grouped by example, in row order: a run from position 0, then the runs that continue its prefix
    (`plan_runs` gives a row's first run prefix 0)."""
    examples: list[list[Run]] = []
    for run in runs:
        if run.prefix == 0:
            examples.append([run])
        else:
            examples[-1].append(run)
    return examples


def attends_by_cascade(example: list[Run], window: int | None) -> bool:
    """Whether ``example`` can attend as a cascade: later runs that all continue the same prefix, and no query
    farther than a sliding window from the example's first key (its positions all under ``window``)."""
    first, later = example[0], example[1:]
    if not later or any(run.prefix != later[0].prefix for run in later):
        return False
    last_position = max(first.end - first.start, *(run.prefix + run.end - run.start for run in later)) - 1
    return window is None or last_position < window


def merge_attention(out_a: torch.Tensor, lse_a: torch.Tensor, out_b: torch.Tensor, lse_b: torch.Tensor) -> torch.Tensor:
    """Attention over the union of two disjoint sets of keys from attention over each.

    Args:
        out_a, out_b: [..., L, D] each query's softmax-weighted values over key set A, B.
        lse_a, lse_b: [..., L] float32 log-sum-exp of each query's scaled scores over A, B (−inf in ``lse_a``: the
            query sees none of A, and keeps ``out_b``).

    Returns:
        [..., L, D] ``w · out_a + (1 − w) · out_b``, ``w = sigmoid(lse_a − lse_b)`` (the union's softmax mass on A),
        in one pass (`torch.lerp`); w is rounded to ``out_b``'s dtype. Not in place: written into ``out_b`` (an
        output of a graph break), it gave wrong scores under torch.compile (test_compiled_engine_matches_reference).
    """
    return torch.lerp(out_b, out_a, torch.sigmoid(lse_a - lse_b).to(out_b.dtype).unsqueeze(-1))


def _cascade(query, key, value, example: list[Run], scaling: float | None, out: torch.Tensor) -> None:
    """One example by the cascade (module docstring) into ``out`` [1, T, H, D]; query, key, value [1, H, T, D]."""
    first, later = example[0], example[1:]
    start, prompt = first.start, later[0].prefix
    keys = slice(start, start + prompt)
    on_prompt, lse_prompt = _FLASH_CPU(query[:, :, start : later[-1].end], key[:, :, keys], value[:, :, keys],
                                       is_causal=True, scale=scaling)  # fmt: skip
    out[:, start : start + prompt] = on_prompt[:, :, :prompt].transpose(1, 2)
    for a, b in ((start + prompt, first.end), *((run.start, run.end) for run in later)):
        if a == b:
            continue
        own, mine = slice(a, b), slice(a - start, b - start)
        on_self, lse_self = _FLASH_CPU(query[:, :, own], key[:, :, own], value[:, :, own], is_causal=True,
                                       scale=scaling)  # fmt: skip
        merged = merge_attention(on_prompt[:, :, mine], lse_prompt[:, :, mine], on_self, lse_self)
        out[:, own] = merged.transpose(1, 2)


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
    """Attention of each run of each row on what its positions say it sees (`plan_runs`): by the cascade where an
    example allows it without gradients on a CPU, else run by run.

    Args:
        query: [B, H, T, D]; key, value: [B, H_kv, T, D] (grouped-query heads are repeated to H; a single key
            head is expanded as a view where the cascade may run).
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
    window = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
    positions = position_ids.reshape(-1, position_ids.shape[-1])[:, -query.shape[2] :].expand(query.shape[0], -1)
    cascade = (_FLASH_CPU is not None and query.device.type == "cpu" and dropout == 0.0
               and not (torch.is_grad_enabled() and (query.requires_grad or key.requires_grad
                                                     or value.requires_grad)))  # fmt: skip
    groups = query.shape[1] // key.shape[1]
    if cascade and key.shape[1] == 1:  # one key head: its views serve every query head (inference only)
        key, value = key.expand(-1, groups, -1, -1), value.expand(-1, groups, -1, -1)
    else:
        key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    out = query.new_empty(query.shape[0], query.shape[2], query.shape[1], query.shape[3])
    for b in range(query.shape[0]):
        q, k, v, row = query[b : b + 1], key[b : b + 1], value[b : b + 1], out[b : b + 1]
        for example in examples_of(plan_runs(positions[b])):
            if cascade and attends_by_cascade(example, window):
                _cascade(q, k, v, example, scaling, row)
                continue
            for run in example:
                row[:, run.start : run.end] = _run_attention(q, k, v, run, window, dropout, scaling).transpose(1, 2)
    return out, None


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
    with attending_with(model, SEGMENT_SDPA, segment_sdpa_forward, segment_mask):
        yield True
