"""Greedy decoding with continuous batching: a finished row's slot takes the next prompt at once.

A static batch runs until its longest answer ends, so rows that stopped early keep costing a step each; on
the CPU a step costs nearly the same at any batch size (it streams the weights), so the stopped rows are not
what costs, the steps are: a batch of 16 SVAMP answers did 46% useful row-steps (docs/performance.md). Here
the batch stays full: ``slots`` rows decode together and, whenever rows finish, the next prompts are
prefilled (as a batch of their own) and put in the freed slots.

The rows share one left-padded KV cache: every row's keys and values end at the last column, a row's
earlier columns are padding (masked). A new prompt shorter than the cache is padded on the left to its
width; a longer one widens the cache (padding every other row on the left). Columns that are padding in
every row are cut off. Positions are each row's own count of real tokens, so a row decodes exactly as it
would alone, up to rounding (tests/generation/test_continuous.py compares with transformers' generate in
float64). Only caches of plain full-attention layers can be laid out this way; `supports_continuous` says
whether a model's are (sliding-window layers, e.g. Gemma 3's, keep a window of their own).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from grape.models.kv_cache import cache_keyword, cache_of
from grape.models.padded_cache import joined, mergeable, selected, trimmed, with_room


@dataclass
class _Row:
    index: int  # the prompt's position in the input
    length: int  # real tokens in the cache (prompt + answer so far)
    tokens: list[int] = field(default_factory=list)  # the answer so far (an ending EOS included)
    reason: str = ""  # "stop" (EOS or a stop string) or "length", once done


def supports_continuous(model) -> bool:
    """Whether every layer of ``model``'s KV cache is a plain full-attention one (no sliding window)."""
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False
    return all(kind == "full_attention" for kind in getattr(config, "layer_types", None) or [])


@torch.inference_mode()
def continuous_greedy(
    model,
    prompts: list[list[int]],
    max_new_tokens: int,
    eos_ids: set[int],
    pad_id: int,
    slots: int,
    finished: Callable[[list[int]], bool] | None = None,
) -> Iterator[tuple[int, list[int], str]]:
    """Yield (prompt index, answer ids, "stop" | "length") for every prompt, in the order they finish.

    An answer ends at an EOS id (not included), after ``max_new_tokens`` ("length"), or when ``finished(answer
    ids)`` says so (a stop string: "stop"). Prompts enter in the order given.
    """
    device = next(model.parameters()).device
    keyword = cache_keyword(model)
    waiting = list(range(len(prompts)))[::-1]  # popped from the end: input order
    rows: list[_Row] = []
    cache, mask, last = None, None, None  # the shared cache, its [B, W] mask, each row's last token [B]
    while waiting or rows:
        if waiting and len(rows) < slots:
            entering = [waiting.pop() for _ in range(min(slots - len(rows), len(waiting)))]
            fresh, fresh_mask, fresh_logits = _prefill(model, [prompts[i] for i in entering], pad_id, device, keyword)
            new_rows = [_Row(i, len(prompts[i])) for i in entering]
            cache, mask = joined(cache, mask, fresh, fresh_mask)
            cache = with_room(cache)  # a step writes its column in place (grape.models.padded_cache)
            rows += new_rows
            chosen = fresh_logits.argmax(-1)
            last = chosen if last is None else torch.cat([last, chosen])
            done = _advance(rows, len(rows) - len(new_rows), chosen.tolist(), eos_ids, max_new_tokens, finished)
        else:
            positions = torch.tensor([[row.length] for row in rows], device=device)
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            output = model(input_ids=last[:, None], attention_mask=mask, position_ids=positions,
                           use_cache=True, **{keyword: cache})  # fmt: skip
            cache = cache_of(output)
            for row in rows:
                row.length += 1
            chosen = output.logits[:, -1].argmax(-1)
            last = chosen
            done = _advance(rows, 0, chosen.tolist(), eos_ids, max_new_tokens, finished)
        if done:
            for position in done:
                row = rows[position]
                yield row.index, row.tokens[:-1] if row.tokens[-1] in eos_ids else row.tokens, row.reason
            finished_rows = set(done)
            keep = [p for p in range(len(rows)) if p not in finished_rows]
            rows = [rows[p] for p in keep]
            if not rows:
                cache, mask, last = None, None, None
                continue
            index = torch.tensor(keep, device=device)
            cache, mask, last = selected(cache, index), mask[index], last[index]
            cache, mask = trimmed(cache, mask)


def _advance(rows, first, chosen, eos_ids, max_new_tokens, finished) -> list[int]:
    """Append each row's (from ``first`` on) chosen token; the positions of the rows that are done."""
    done = []
    for offset, token in enumerate(chosen):
        row = rows[first + offset]
        row.tokens.append(token)
        if token in eos_ids or (finished is not None and finished(row.tokens)):
            row.reason = "stop"
        elif len(row.tokens) >= max_new_tokens:
            row.reason = "length"
        if row.reason:
            done.append(first + offset)
    return done


def _prefill(model, prompts: list[list[int]], pad_id: int, device, keyword: str):
    """The prompts' cache (left-padded among themselves), its mask and each one's next-token logits."""
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad_id] * (width - len(p)) + p for p in prompts], device=device)
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts], device=device)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    output = model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, **{keyword: None})
    cache = cache_of(output)
    if not mergeable(cache):
        raise ValueError("continuous batching needs a cache of plain full-attention layers")
    return cache, mask, output.logits[:, -1]
