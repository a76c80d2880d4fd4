"""Arms evaluated on the same items, compared item by item: which items only one of them gets right.

Two accuracies with overlapping intervals can still differ: on the same items the comparison is paired, and
only the items the two arms judge differently carry information. For every two eval steps judged on the same
items (the same ids) the run report shows those counts and the exact McNemar test's p
(grape.evaluation.metrics.mcnemar_exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

from grape.evaluation.metrics import mcnemar_exact
from grape.report.runs import EvalResult


@dataclass(frozen=True)
class PairedComparison:
    first: str  # the arm labels, in report order
    second: str
    items: int  # items both judged
    only_first: int  # items only the first gets right
    only_second: int
    p: float  # exact two-sided McNemar


def paired_comparisons(evals: list[EvalResult]) -> list[PairedComparison]:
    """One comparison for every two eval results whose judged items are the same ids (others: none)."""
    out = []
    for a, b in combinations(evals, 2):
        if not a.verdicts or a.verdicts.keys() != b.verdicts.keys():
            continue
        test = mcnemar_exact(a.verdicts, b.verdicts)
        out.append(PairedComparison(a.accuracy.label, b.accuracy.label, test["items"], test["only_first"],
                                    test["only_second"], test["p"]))  # fmt: skip
    return out
