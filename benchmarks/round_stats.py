"""Repeated, interleaved timings: the order of each round, the median and spread of a figure, and
whether a ratio is steady enough to print.

A single timing on a shared machine says more about the other jobs than about the code: one method
may be slowed more than another because the load changed between them. So every method runs once per
round, in an order that rotates from round to round (no method always runs first, right after the
warm-up, or last), ratios are taken within a round (both timings saw the same load) and a figure is
reported as the median over rounds with its spread. A ratio whose spread is too large is not printed.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass

# Largest spread, (max - min) / median over the rounds, at which a ratio is still printed. On a quiet
# machine repeated runs of the same method differ by a few percent; 10% leaves room for that while
# refusing the runs in which other jobs moved a figure by more than the effects being measured.
MAX_SPREAD_PCT = 10.0
MIN_ROUNDS = 3  # fewer cannot show a spread worth the name


def rotated_order(methods: Sequence[str], round_index: int) -> list[str]:
    """The order of the methods in round ``round_index`` (from 0): the list rotated left by that many
    places, so that over len(methods) rounds each method runs once in each position."""
    shift = round_index % len(methods)
    return list(methods[shift:]) + list(methods[:shift])


@dataclass(frozen=True)
class Spread:
    """Summary of one figure over the rounds (any unit; the percentages are relative to the median)."""

    n: int
    median: float
    low: float  # min
    high: float  # max
    q1: float  # lower quartile (inclusive method; equal to the median for one value)
    q3: float

    @property
    def range_pct(self) -> float:
        """(max - min) as a percentage of the median."""
        return 100.0 * (self.high - self.low) / self.median

    @property
    def iqr_pct(self) -> float:
        """Interquartile range as a percentage of the median."""
        return 100.0 * (self.q3 - self.q1) / self.median

    def as_dict(self) -> dict:
        return {**asdict(self), "range_pct": self.range_pct, "iqr_pct": self.iqr_pct}

    def brief(self) -> str:
        """``median (min-max)`` to three decimals, as the benchmarks' tables print a ratio over rounds."""
        return f"{self.median:.3f} ({self.low:.3f}-{self.high:.3f})"


def spread_of(values: Sequence[float]) -> Spread:
    """Median, min, max and quartiles of ``values`` (one per round, all > 0)."""
    if not values:
        raise ValueError("spread_of needs at least one value")
    if len(values) == 1:
        q1 = q3 = values[0]
    else:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return Spread(len(values), statistics.median(values), min(values), max(values), q1, q3)


def per_round_ratios(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """numerators[r] / denominators[r] for each round r: both measured under the same load."""
    return [a / b for a, b in zip(numerators, denominators, strict=True)]


def bracketing_peaks(peaks: Sequence[float]) -> list[float]:
    """The yardstick of each round: the mean of the peaks measured just before and just after it.

    ``peaks`` has one more entry than there are rounds (before round 1, between rounds, after the last).
    A virtual machine's matmul peak drifts (166 and 138 GFLOP/s ten minutes apart on one VM), so a
    fraction of one peak measured at start-up moves with the drift; a round's own bracketing peak saw
    the same machine as the round."""
    if len(peaks) < 2:
        raise ValueError("bracketing_peaks needs a peak before and after at least one round")
    return [(before + after) / 2 for before, after in zip(peaks[:-1], peaks[1:], strict=True)]


def ratio_refusal(spreads: Sequence[Spread], max_spread_pct: float = MAX_SPREAD_PCT) -> str | None:
    """Why a ratio must not be printed, or None when it may be.

    ``spreads`` are those of the figures the ratio stands on (the per-round ratio and the rates of its
    two methods). Refused when there are fewer than MIN_ROUNDS rounds or when any of them varies by more
    than ``max_spread_pct`` (max - min over the median)."""
    rounds = min(s.n for s in spreads)
    if rounds < MIN_ROUNDS:
        return f"{rounds} round(s) cannot show a spread: run --rounds {MIN_ROUNDS} or more"
    worst = max(s.range_pct for s in spreads)
    if worst > max_spread_pct:
        return f"spread too large: {worst:.0f}%, rerun on a quiet machine"
    return None
