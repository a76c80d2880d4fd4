"""The draw of one budget cell: what a budget buys, and which instructions it buys, as pure functions.

The counts. An SFT example costs 1 unit and a pair ``pair_cost`` units. A cell of budget B and SFT share f gets

    n_sft   = round(f · B), half up   (0.05 · 128 = 6.4 -> 6; 0.05 · 512 = 25.6 -> 26)
    n_pairs = floor((B − n_sft) / pair_cost)

so f = 0 spends the whole budget on pairs and f = 1 on SFT examples; what a pair's cost leaves over is unspent.

The instructions. An instruction is a row's ``id`` where every row of both pools has one, else its prompt; a
pool may hold an instruction once. For seed s, the instructions of both pools together, sorted, are shuffled
once by ``random.Random(s)``. The SFT examples are the first n_sft instructions of that order that the SFT pool
holds; the pairs are the first n_pairs from the *end* of the order that the pair pool holds and SFT did not take.
So the two sets never share an instruction, a cell depends on the seed and the pools' instructions only (not
on their row order), and where both pools hold the same instructions, one seed's SFT sets grow and its pair
sets shrink as f grows, each nested in the next: the cells of a seed differ in the split, not in the luck of
the draw. A pool too small for a cell is a one-line error naming it, before anything is trained.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from grape.errors import GrapeError, InputError


@dataclass(frozen=True)
class Draw:
    share: float
    seed: int
    sft: tuple[str, ...]  # the instructions of the SFT examples, in draw order
    pairs: tuple[str, ...]  # the instructions of the pairs, in draw order

    @property
    def n_sft(self) -> int:
        return len(self.sft)

    @property
    def n_pairs(self) -> int:
        return len(self.pairs)


def cell_counts(budget: int, share: float, pair_cost: float = 1.0) -> tuple[int, int]:
    """(n_sft, n_pairs) that ``budget`` units buy at SFT share ``share``: the rule in the module doc."""
    if budget < 1:
        raise GrapeError(f"budget must be at least 1, got {budget}")
    if not 0 <= share <= 1:
        raise GrapeError(f"share {share:g} is not in [0, 1]")
    if pair_cost <= 0:
        raise GrapeError(f"pair_cost must be positive, got {pair_cost:g}")
    n_sft = math.floor(share * budget + 0.5)
    # the small tolerance keeps 0.3 · 10 / 0.3 from flooring to 9.999... -> 9
    n_pairs = math.floor((budget - n_sft) / pair_cost + 1e-9)
    return n_sft, n_pairs


def draw_cell(
    sft_pool: Sequence[str], pair_pool: Sequence[str], budget: int, share: float, pair_cost: float, seed: int,
    files: tuple[str, str] = ("the SFT pool", "the pair pool"),
) -> Draw:  # fmt: skip
    """The instructions of the cell (``share``, ``seed``), drawn from the pools' instruction keys (module doc).

    ``files`` name the pools in the error raised when one holds too few instructions for the cell.
    """
    n_sft, n_pairs = cell_counts(budget, share, pair_cost)
    sft_file, pair_file = files
    order = sorted(set(sft_pool) | set(pair_pool))
    random.Random(seed).shuffle(order)
    in_sft = set(sft_pool)
    sft = [key for key in order if key in in_sft][:n_sft]
    if len(sft) < n_sft:
        raise GrapeError(f"{sft_file}: {len(in_sft)} instructions, but share {share:g} of budget {budget} needs "
                         f"{n_sft} SFT examples")  # fmt: skip
    taken, in_pairs = set(sft), set(pair_pool)
    left = [key for key in reversed(order) if key in in_pairs and key not in taken]
    if len(left) < n_pairs:
        raise GrapeError(f"{pair_file}: {len(left)} instructions left beside the {n_sft} drawn for SFT (of "
                         f"{len(in_pairs)}), but share {share:g} of budget {budget} needs {n_pairs} pairs at "
                         f"{pair_cost:g} units each")  # fmt: skip
    return Draw(share, seed, tuple(sft), tuple(left[:n_pairs]))


def instruction_keys(
    sft_rows: list[dict[str, Any]], pair_rows: list[dict[str, Any]], files: tuple[str, str]
) -> tuple[list[str], list[str]]:
    """The instruction key of every row of each pool: its ``id`` where all rows of both have one, else its prompt.

    A row without a prompt, or an instruction a pool holds twice, is an error naming the file, row and field.
    """
    by_id = all(_has_id(row) for row in [*sft_rows, *pair_rows])
    return _keys(sft_rows, files[0], by_id), _keys(pair_rows, files[1], by_id)


def keys_hash(keys: Sequence[str]) -> str:
    """A short hash of a set of instruction keys (order-free): two cells drew the same set iff it is equal."""
    return hashlib.sha256(json.dumps(sorted(keys)).encode()).hexdigest()[:16]


def _has_id(row: dict[str, Any]) -> bool:
    return isinstance(row.get("id"), (str, int)) and str(row["id"]) != ""


def _keys(rows: list[dict[str, Any]], file: str, by_id: bool) -> list[str]:
    keys: list[str] = []
    first: dict[str, int] = {}
    field = "id" if by_id else "prompt"
    for number, row in enumerate(rows, start=1):
        key = str(row["id"]) if by_id else _prompt_key(row, file, number)
        if key in first:
            raise InputError(file, number, field, f"instruction {key[:60]!r} again (first at row {first[key]}): "
                             "a budget counts one example or pair per instruction")  # fmt: skip
        first[key] = number
        keys.append(key)
    return keys


def _prompt_key(row: dict[str, Any], file: str, number: int) -> str:
    """The prompt as text: a string as it is, a conversation (``prompt`` or ``messages`` less its answer) as JSON."""
    prompt = row.get("prompt")
    if prompt is None and isinstance(row.get("messages"), list) and row["messages"]:
        prompt = row["messages"][:-1]
    if isinstance(prompt, str) and prompt.strip():
        return prompt
    if isinstance(prompt, list) and prompt:
        return json.dumps(prompt, sort_keys=True, ensure_ascii=False)
    raise InputError(file, number, "prompt", "missing: rows without an `id` are told apart by their prompt")
