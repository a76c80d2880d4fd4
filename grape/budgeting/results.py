"""What a budget run reports: per cell, the answer-format rate beside `grape eval`'s accuracy; per share, the mean
over seeds as a markdown table.

The answer-format rate is the share of evaluated items whose response states an explicit final answer, in the
forms the math and number verifiers read first: ``\\boxed{...}``, GSM8K's ``#### n``, or "the answer is ..." /
"Answer: ..." (grape.verification.answer_text). A response the verifier could only judge by its last number does
not count: that is the "cold start" the format rate measures, a model that never learnt to end with its answer.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any

from grape.evaluation.metrics import wilson_interval
from grape.verification.answer_text import last_boxed, stated_answers


def states_final_answer(response: str | None) -> bool:
    """Whether ``response`` states its final answer explicitly (boxed, ``#### n``, "the answer is ...")."""
    if not response:
        return False
    return last_boxed(response) is not None or bool(stated_answers(response))


def format_metrics(eval_rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The answer-format rate of `grape eval`'s per-item rows, with its 95% Wilson interval."""
    stated = sum(1 for row in eval_rows if states_final_answer(row.get("response")))
    low, high = wilson_interval(stated, len(eval_rows))
    return {"format_count": stated, "format_rate": stated / len(eval_rows) if eval_rows else None,
            "format_ci95": [low, high]}  # fmt: skip


def heldout_metrics(scores: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Held-out log-likelihood of the scored gold responses: the mean over rows of the mean log-prob per response
    token (the GRAPE fit), and the total log-prob over the total tokens."""
    scored = [row for row in scores if row.get("status") == "scored"]
    if not scored:
        return {"heldout_rows": 0, "heldout_mean_logprob": None, "heldout_token_logprob": None}
    tokens = sum(row["n_tokens"] for row in scored)
    return {
        "heldout_rows": len(scored),
        "heldout_mean_logprob": statistics.fmean(row["mean_logprob"] for row in scored),
        "heldout_token_logprob": sum(row["sum_logprob"] for row in scored) / tokens if tokens else None,
    }


# The columns of the summary: (heading, the cell's key); each the mean over seeds, with the range over seeds.
SUMMARY_METRICS = (("accuracy", "accuracy"), ("format rate", "format_rate"),
                   ("held-out log-prob/token", "heldout_mean_logprob"))  # fmt: skip


def summary_rows(cells: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per share (in the cells' order): the counts, the seeds done, and each metric's mean, min and max."""
    shares: dict[float, list[dict[str, Any]]] = {}
    for cell in cells:
        shares.setdefault(cell["share"], []).append(cell)
    rows = []
    for share, group in shares.items():
        row: dict[str, Any] = {"share": share, "n_sft": group[0]["n_sft"], "n_pairs": group[0]["n_pairs"],
                               "seeds": len(group)}  # fmt: skip
        for _, key in SUMMARY_METRICS:
            values = [cell[key] for cell in group if cell.get(key) is not None]
            row[key] = (statistics.fmean(values), min(values), max(values)) if values else None
        rows.append(row)
    return rows


def summary_markdown(cells: Sequence[dict[str, Any]], budget: int, pair_cost: float) -> str:
    """The summary table by share (mean over seeds; min–max below it when there are several seeds)."""
    headings = ["SFT share", "SFT examples", "pairs", "seeds", *(name for name, _ in SUMMARY_METRICS)]
    lines = [f"# Budget {budget} (a pair costs {pair_cost:g} units)", "",
             "Each metric is the mean over seeds, with its range over seeds in brackets.", "",
             "| " + " | ".join(headings) + " |", "|" + " --- |" * len(headings)]  # fmt: skip
    for row in summary_rows(cells):
        shown = [_mean_and_range(row[key], percent=key != "heldout_mean_logprob") for _, key in SUMMARY_METRICS]
        lines.append(f"| {row['share']:g} | {row['n_sft']} | {row['n_pairs']} | {row['seeds']} | {' | '.join(shown)} |")
    return "\n".join(lines) + "\n"


def _mean_and_range(value: tuple[float, float, float] | None, percent: bool) -> str:
    if value is None:
        return "n/a"
    mean, low, high = value
    show = (lambda v: f"{100 * v:.1f}%") if percent else (lambda v: f"{v:.3f}")
    return show(mean) if low == high else f"{show(mean)} [{show(low)}, {show(high)}]"
