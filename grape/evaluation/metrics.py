"""Accuracy and means over seeds with confidence intervals, as pure functions."""

from __future__ import annotations

import math
from collections.abc import Mapping

Z_95 = 1.959963984540054  # the 97.5% quantile of the standard normal


def wilson_interval(correct: int, total: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion (95% by default).

    Unlike the normal approximation p ± z·sqrt(p(1-p)/n), it stays inside [0, 1] and is not empty
    at 0/n or n/n, which matters for the small evaluation sets grape runs on a CPU.
    """
    if total <= 0:
        return (0.0, 1.0)
    if not 0 <= correct <= total:
        raise ValueError(f"correct={correct} is not within 0..{total}")
    p = correct / total
    scale = 1 + z * z / total
    center = (p + z * z / (2 * total)) / scale
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / scale
    return (max(0.0, center - half), min(1.0, center + half))


def mean_t_interval(values: list[float], level: float = 0.95) -> tuple[float, float]:
    """The mean of ``values`` and the half-width of its t-interval (Student's t, n − 1 degrees of freedom):
    what a handful of seeds supports. The half-width is NaN for a single value (no spread to measure)."""
    import statistics

    from scipy.stats import t

    if not values:
        raise ValueError("no values")
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, float("nan")
    quantile = float(t.ppf(0.5 + level / 2, len(values) - 1))
    return mean, quantile * statistics.stdev(values) / math.sqrt(len(values))


def mcnemar_exact(first: dict[str, bool], second: dict[str, bool]) -> dict:
    """The exact two-sided McNemar test of two models' verdicts on the same items (``{item id: right}``).

    b = items only ``first`` gets right, c = items only ``second`` gets right; under the null hypothesis each
    disagreement goes either way with probability 1/2, so p = min(1, 2 · P(Binomial(b + c, 1/2) ≤ min(b, c)))
    (1 when they never disagree). Returns ``{"items", "only_first", "only_second", "p"}``.
    """
    if not (isinstance(first, Mapping) and isinstance(second, Mapping)):  # lists would be read as ids, silently
        raise TypeError("mcnemar_exact takes two {item id: right} mappings")
    if set(first) != set(second):
        raise ValueError("the two were judged on different items: no paired comparison")
    b = sum(bool(first[i]) and not second[i] for i in first)
    c = sum(bool(second[i]) and not first[i] for i in first)
    n = b + c
    p = min(1.0, 2 * sum(math.comb(n, k) for k in range(min(b, c) + 1)) / 2**n) if n else 1.0
    return {"items": len(first), "only_first": b, "only_second": c, "p": p}
