"""The uncertain choices: per instruction, how far the best candidate's fit is ahead of the second best.

A small margin (in mean log-prob per token) means the target found two answers about equally
natural, so the choice between them is close to a coin flip; those are worth reading.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class Contender:
    source: str
    score: float
    n_tokens: int
    text: str
    chosen: bool


@dataclass
class Margin:
    id: str
    instruction: str
    best: Contender
    second: Contender | None  # None when the instruction has a single scored candidate
    n_scored: int

    @property
    def margin(self) -> float | None:
        """best score - second score (>= 0), or None without a second candidate."""
        return None if self.second is None else self.best.score - self.second.score


def margins(candidates: pd.DataFrame) -> list[Margin]:
    """One `Margin` per instruction with a scored candidate, smallest margin first (single-candidate
    instructions last, in input order). Ties in score keep the earlier candidate as the best."""
    scored = candidates[candidates["scored"]]
    out: list[Margin] = []
    for ident, group in scored.groupby("id", sort=False):
        ranked = group.sort_values(["mean_logprob", "candidate"], ascending=[False, True], kind="stable")
        top = [_contender(row) for row in ranked.head(2).itertuples()]
        out.append(Margin(str(ident), str(ranked["instruction"].iloc[0]), top[0], top[1] if len(top) > 1 else None,
                          len(ranked)))  # fmt: skip
    with_second = sorted((m for m in out if m.margin is not None), key=lambda m: m.margin)
    return with_second + [m for m in out if m.margin is None]


def _contender(row) -> Contender:
    return Contender(
        source=str(row.source),
        score=float(row.mean_logprob),
        n_tokens=int(row.n_tokens),
        text=str(row.response),
        chosen=bool(row.chosen),
    )
