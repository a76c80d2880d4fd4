"""The numbers a report states: overall counts, per-source shares, and how fit correlates with length.

All functions are pure: they take the candidates frame of `ReportInputs` and return plain values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd


def pearson(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Pearson's r of two samples of length n; None where it is undefined (n < 2, or a constant sample)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) < 2:
        return None
    dx, dy = x - x.mean(), y - y.mean()
    denominator = np.sqrt((dx * dx).sum() * (dy * dy).sum())
    return None if denominator == 0 else float((dx * dy).sum() / denominator)


def average_ranks(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, [n]; tied values share the mean of the ranks they span: [10, 20, 20] -> [1, 2.5, 2.5]."""
    _, inverse, counts = np.unique(np.asarray(values, dtype=float), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # rank of the last member of each run of equal values
    return (last - (counts - 1) / 2)[inverse]


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rho: Pearson's r of the average ranks (so ties are handled as usual)."""
    if len(x) < 2:
        return None
    return pearson(average_ranks(x), average_ranks(y))


@dataclass
class FitLength:
    """Does fit follow length? Correlations of mean log-prob with response tokens over scored candidates."""

    n: int
    pearson: float | None
    spearman: float | None
    mean_tokens_all: float | None
    mean_tokens_chosen: float | None


def fit_length(candidates: pd.DataFrame) -> FitLength:
    scored = candidates[candidates["scored"]]
    tokens = scored["n_tokens"].astype(float).to_numpy()
    fit = scored["mean_logprob"].astype(float).to_numpy()
    chosen = scored[scored["chosen"]]["n_tokens"].astype(float)
    return FitLength(
        n=len(scored),
        pearson=pearson(tokens, fit),
        spearman=spearman(tokens, fit),
        mean_tokens_all=float(tokens.mean()) if len(tokens) else None,
        mean_tokens_chosen=float(chosen.mean()) if len(chosen) else None,
    )


def source_table(candidates: pd.DataFrame) -> pd.DataFrame:
    """One row per source, most chosen first: candidates, scored, chosen, chosen_share (of all chosen),
    mean_logprob and mean_tokens (over scored), verified, correct, correct_share (of verified)."""
    real = candidates[candidates["candidate"].notna()]  # as `overview` counts: an instruction skipped whole has none
    frame = real.assign(
        verified=real["correct"].notna(),
        is_correct=real["correct"].fillna(False).astype(bool),
        fit=real["mean_logprob"].astype(float).where(real["scored"]),
        tokens=real["n_tokens"].astype(float).where(real["scored"]),
    )
    table = frame.groupby("source", sort=True).agg(
        candidates=("candidate", "size"),
        scored=("scored", "sum"),
        chosen=("chosen", "sum"),
        mean_logprob=("fit", "mean"),
        mean_tokens=("tokens", "mean"),
        verified=("verified", "sum"),
        correct=("is_correct", "sum"),
    )
    table["chosen_share"] = table["chosen"] / max(int(table["chosen"].sum()), 1)
    table["correct_share"] = table["correct"] / table["verified"].where(table["verified"] > 0)
    table = table.reset_index().sort_values(["chosen_share", "source"], ascending=[False, True], kind="stable")
    return table.reset_index(drop=True)


def overview(candidates: pd.DataFrame, unreadable_rows: int = 0) -> dict[str, int | None]:
    """Counts for the summary cards. ``instructions_without_correct`` is None when nothing was verified."""
    real = candidates[candidates["candidate"].notna()]  # rows for instructions skipped whole have no candidate
    per_instruction = candidates.groupby("id", sort=False)
    verified = bool(candidates["correct"].notna().any())
    any_correct = per_instruction["correct"].agg(lambda c: bool(c.fillna(False).any()))
    return {
        "instructions": int(candidates["id"].nunique()),
        "candidates": len(real),
        "scored": int(candidates["scored"].sum()),
        "skipped": int(len(real) - candidates["scored"].sum()),
        "chosen": int(candidates["chosen"].sum()),
        "instructions_without_choice": int((~per_instruction["chosen"].any()).sum()),
        "instructions_without_correct": int((~any_correct).sum()) if verified else None,
        "unreadable_rows": unreadable_rows,
    }
