"""Pack instruction groups into token-budget batches laid out for prefix sharing (the masks that say who sees
whom: attention_masks.py).

A *group* is one prompt and its K responses. It is laid out as one stretch of a row,
``[prompt][r1][r2]...[rK]``, in which each response sees the prompt and itself only, and its
positions continue from the prompt's end as if it were alone. Several groups may share a row (each
sees only itself), rows are batched by similar length, and the token work falls from K·(P+R) to P+K·R.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class TokenGroup:
    prompt: list[int]
    responses: list[list[int]]

    @property
    def length(self) -> int:
        return len(self.prompt) + sum(len(r) for r in self.responses)


@dataclass
class PackedBatch:
    """One forward pass worth of groups. B rows of T tokens; N scored tokens; C candidates."""

    input_ids: torch.Tensor  # [B, T] long (0 in padding)
    position_ids: torch.Tensor  # [B, T] long; a row's padding counts 0, 1, … as one more sequence
    segment: torch.Tensor  # [B, T] long: which group a token belongs to, -1 for padding
    branch: torch.Tensor  # [B, T] long: 0 for prompt tokens, k+1 for tokens of response k
    source_index: torch.Tensor  # [N] long: flat index (into B*T) of the hidden state that predicts each token
    target_ids: torch.Tensor  # [N] long: the response tokens being scored
    candidate_of_token: torch.Tensor  # [N] long: which of the C candidates each scored token belongs to
    candidates: list[tuple[int, int]]  # [C] (group index, response index)


def split_groups(groups: Sequence[TokenGroup], max_row_tokens: int) -> list[tuple[int, list[int]]]:
    """Split groups whose candidates do not fit one row into pieces that repeat the prompt.

    Masked attention over a packed row costs T² however sparse the mask, so one row of 16 responses of
    1,024 tokens would cost 16x its useful attention. Each piece is the prompt plus consecutive
    candidates up to ``max_row_tokens`` (at least one). Returns (group index, candidate indices) per piece.
    """
    pieces: list[tuple[int, list[int]]] = []
    for g, group in enumerate(groups):
        chunk: list[int] = []
        used = len(group.prompt)
        for k, response in enumerate(group.responses):
            if chunk and used + len(response) > max_row_tokens:
                pieces.append((g, chunk))
                chunk, used = [], len(group.prompt)
            chunk.append(k)
            used += len(response)
        if chunk:
            pieces.append((g, chunk))
    return pieces


def plan_rows(lengths: Sequence[int], max_row_tokens: int) -> list[list[int]]:
    """Best-fit decreasing: put groups into rows of at most ``max_row_tokens`` tokens.

    A group longer than the cap gets a row of its own. Returns group indices per row.
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    free: list[tuple[int, int]] = []  # (room left, row) kept sorted, for the tightest fit
    for i in order:
        at = bisect.bisect_left(free, (lengths[i], -1))
        if at < len(free):
            room, row = free.pop(at)
            rows[row].append(i)
            bisect.insort(free, (room - lengths[i], row))
        else:
            rows.append([i])
            room = max_row_tokens - lengths[i]
            if room > 0:
                bisect.insort(free, (room, len(rows) - 1))
    return rows


def plan_batches(row_lengths: Sequence[int], batch_tokens: int) -> list[list[int]]:
    """Group rows of similar length so that rows x longest row stays within ``batch_tokens``."""
    order = sorted(range(len(row_lengths)), key=lambda i: (-row_lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * row_lengths[batches[-1][0]] <= batch_tokens:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def build_batch(groups: Sequence[TokenGroup], rows: Sequence[Sequence[int]]) -> PackedBatch:
    """Lay out the groups named in ``rows`` (indices into ``groups``) as one padded batch."""
    width = max(sum(groups[g].length for g in row) for row in rows)
    shape = (len(rows), width)
    ids, pos = np.zeros(shape, np.int64), np.zeros(shape, np.int64)
    seg, branch = np.full(shape, -1, np.int64), np.zeros(shape, np.int64)
    sources, targets, owners, candidates = [], [], [], []
    segment = 0
    for b, row in enumerate(rows):
        at = 0
        for g in row:
            group = groups[g]
            p = len(group.prompt)
            if p == 0:
                raise ValueError("a prompt needs at least one token (BOS) to predict the first response token")
            ids[b, at : at + p], pos[b, at : at + p], seg[b, at : at + p] = group.prompt, np.arange(p), segment
            last_prompt = b * width + at + p - 1
            at += p
            for k, response in enumerate(group.responses):
                r = len(response)
                span = slice(at, at + r)
                ids[b, span], pos[b, span], seg[b, span], branch[b, span] = (
                    response,
                    np.arange(p, p + r),
                    segment,
                    k + 1,
                )
                flat = b * width + at + np.arange(r)
                sources.append(np.concatenate([[last_prompt], flat[:-1]]))
                targets.append(response)
                owners.append(np.full(r, len(candidates)))
                candidates.append((g, k))
                at += r
            segment += 1
        pos[b, at:] = np.arange(width - at)  # padding: one run of its own (segment_attention.py cuts by position)
    as_long = lambda x: torch.from_numpy(np.asarray(x, dtype=np.int64))  # noqa: E731
    cat = lambda parts: as_long(np.concatenate(parts) if parts else np.zeros(0))  # noqa: E731
    return PackedBatch(
        as_long(ids), as_long(pos), as_long(seg), as_long(branch), cat(sources), cat(targets), cat(owners), candidates
    )
