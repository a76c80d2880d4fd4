"""Selection strategies: small pure functions that rank one instruction's eligible candidates.

Each takes the scored candidate rows of one instruction (dicts with ``candidate``, ``source``,
``n_tokens``, ``mean_logprob``) and returns them best first. Ties are broken by candidate index,
so the same table always gives the same selection. Two take a parameter in their name: ``source:NAME``
(one model's candidates) and ``priority:A,B,C`` (S3FT: the first listed source that has a candidate).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from typing import Any

from grape.console import console
from grape.errors import GrapeError

Row = dict[str, Any]
Strategy = Callable[[list[Row], int], list[Row]]  # (rows of one instruction, seed) -> ranked rows


def rank_by_fit(rows: list[Row], seed: int = 0) -> list[Row]:
    """GRAPE: highest mean log-probability (best fit to the target model) first."""
    return sorted(rows, key=lambda r: (-r["mean_logprob"], r["candidate"]))


def rank_by_lowest_fit(rows: list[Row], seed: int = 0) -> list[Row]:
    """The paper's ablation: lowest mean log-probability (highest perplexity) first."""
    return sorted(rows, key=lambda r: (r["mean_logprob"], r["candidate"]))


def rank_longest(rows: list[Row], seed: int = 0) -> list[Row]:
    return sorted(rows, key=lambda r: (-r["n_tokens"], r["candidate"]))


def rank_shortest(rows: list[Row], seed: int = 0) -> list[Row]:
    return sorted(rows, key=lambda r: (r["n_tokens"], r["candidate"]))


def rank_random(rows: list[Row], seed: int = 0, stream: str = "") -> list[Row]:
    """A uniformly random order, fixed by the seed and the instruction id (not by the row order).

    ``stream`` names an independent draw for the same seed and instruction (pairs draw a rejected
    candidate apart from the chosen one); the default stream is select's.
    """
    ordered = sorted(rows, key=lambda r: r["candidate"])
    key = f"{seed}|{ordered[0]['id'] if ordered else ''}{f'|{stream}' if stream else ''}".encode()
    random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big")).shuffle(ordered)
    return ordered


def rank_all(rows: list[Row], seed: int = 0) -> list[Row]:
    """Every candidate, in input order."""
    return sorted(rows, key=lambda r: r["candidate"])


def rank_from_source(name: str) -> Strategy:
    """Only the candidates of one source (distilling from a single model), in input order."""

    def rank(rows: list[Row], seed: int = 0) -> list[Row]:
        return sorted((r for r in rows if r["source"] == name), key=lambda r: r["candidate"])

    return rank


def rank_by_priority(sources: list[str]) -> Strategy:
    """S3FT's rule: the candidates of the first listed source that has any, best fit first, then those of
    the next sources in turn; candidates of sources not listed are not eligible."""
    place = {name: i for i, name in enumerate(sources)}

    def rank(rows: list[Row], seed: int = 0) -> list[Row]:
        listed = (r for r in rows if r["source"] in place)
        return sorted(listed, key=lambda r: (place[r["source"]], -r["mean_logprob"], r["candidate"]))

    return rank


STRATEGIES: dict[str, Strategy] = {
    "grape": rank_by_fit,
    "lowest": rank_by_lowest_fit,
    "random": rank_random,
    "longest": rank_longest,
    "shortest": rank_shortest,
    "all": rank_all,
}


def get_strategy(name: str) -> Strategy:
    if name.startswith("source:") and len(name) > len("source:"):
        return rank_from_source(name.removeprefix("source:"))
    if name.startswith("priority:"):
        return rank_by_priority(_priority_sources(name))
    if name not in STRATEGIES:
        raise GrapeError(f"unknown strategy '{name}': use one of {sorted(STRATEGIES)}, source:NAME or priority:A,B,C")
    return STRATEGIES[name]


def check_named_sources(strategy: str, present: set[Any]) -> None:
    """A strategy that names sources (source:NAME, priority:A,B) must name one the table has: a typo would
    otherwise select nothing, and say so only as "no eligible candidate"."""
    if strategy.startswith("source:"):
        named = [strategy.removeprefix("source:")]
    elif strategy.startswith("priority:"):
        named = _priority_sources(strategy)
    else:
        return
    sources = ", ".join(sorted(map(str, present))) or "none"
    absent = [name for name in named if name not in present]
    if len(absent) == len(named):
        raise GrapeError(f"strategy '{strategy}': no candidate in the table comes from {', '.join(map(repr, named))} "
                         f"(its sources: {sources})")  # fmt: skip
    if absent:  # a list may name a source this table lacks; said, as a misspelt name would never be picked
        names = ", ".join(map(repr, absent))
        said = f"no candidate in the table comes from {names}: passed over (its sources: {sources})"
        console.print(f"[yellow]strategy '{strategy}': {said}[/]", highlight=False)


def _priority_sources(name: str) -> list[str]:
    sources = [s.strip() for s in name.removeprefix("priority:").split(",")]
    if not all(sources):
        raise GrapeError(f"strategy '{name}': priority:A,B,C needs source names separated by commas, none empty")
    if len(set(sources)) < len(sources):
        raise GrapeError(f"strategy '{name}': a source is listed twice")
    return sources
