"""Gather what a report shows: the scores table, which candidates were chosen, and both sidecars.

The chosen candidates come from a selection written by `grape select` (rows carry ``id`` and
``candidate``); without one, the GRAPE choice (highest mean log-prob per instruction) is computed
here, so that a bare scores table still gets a report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from grape.data.records import SCORED
from grape.data.tables import read_sidecar, read_table_rows
from grape.errors import GrapeError
from grape.selection.scores_table import read_scores_table
from grape.selection.select import select

UNKNOWN_SOURCE = "(no source)"


@dataclass
class ReportInputs:
    """One row per candidate of the scores table (unreadable input rows excluded), plus what made it.

    ``candidates`` columns: id, candidate, source, status, scored (bool), n_tokens, mean_logprob,
    instruction (display text), response, correct (True/False/None), chosen (bool).
    """

    candidates: pd.DataFrame
    unreadable_rows: int
    scores_path: Path
    scores_meta: dict[str, Any]
    selection_path: Path | None
    selection_meta: dict[str, Any]


def collect(scores_path: str | Path, selection_path: str | Path | None = None) -> ReportInputs:
    """Read the scores table (and a selection, if given) into `ReportInputs`; GrapeError on mismatch."""
    scores_path = Path(scores_path)
    rows = read_scores_table(scores_path)
    if selection_path is None:
        chosen_rows, summary = select(rows, strategy="grape")
        selection_meta = {"settings": {"strategy": "grape", "top_k": 1, "computed by": "grape report"},
                          "summary": summary}  # fmt: skip
    else:
        selection_path = Path(selection_path)
        chosen_rows = read_table_rows(selection_path)
        selection_meta = read_sidecar(selection_path)
    readable = [row for row in rows if row["id"] is not None]
    chosen = _chosen_keys(chosen_rows, selection_path)
    known = {(row["id"], row["candidate"]) for row in readable}
    unmatched = chosen - known
    if unmatched:
        ident, candidate = sorted(unmatched, key=str)[0]
        raise GrapeError(
            f"{selection_path}: {len(unmatched)} selected rows are not in {scores_path} (e.g. id {ident!r}, "
            f"candidate {candidate}): was the selection made from another scores table?"
        )
    frame = pd.DataFrame(
        {
            "id": [row["id"] for row in readable],
            "candidate": pd.array([row["candidate"] for row in readable], dtype="Int64"),
            "source": [UNKNOWN_SOURCE if row["source"] is None else str(row["source"]) for row in readable],
            "status": [row["status"] for row in readable],
            "scored": [row["status"] == SCORED for row in readable],
            "n_tokens": pd.array([row["n_tokens"] for row in readable], dtype="Int64"),
            "mean_logprob": pd.array([row["mean_logprob"] for row in readable], dtype="Float64"),
            "instruction": [instruction_text(row) for row in readable],
            "response": [row.get("response") or "" for row in readable],
            "correct": pd.array([row.get("correct") for row in readable], dtype="boolean"),
            # a selection names scored candidates: a skipped copy under a duplicate id is not the one chosen
            "chosen": [row["status"] == SCORED and (row["id"], row["candidate"]) in chosen for row in readable],
        }
    )
    return ReportInputs(
        candidates=frame,
        unreadable_rows=len(rows) - len(readable),
        scores_path=scores_path,
        scores_meta=read_sidecar(scores_path),
        selection_path=selection_path,
        selection_meta=selection_meta,
    )


def instruction_text(row: dict[str, Any]) -> str:
    """What the instruction says: the prompt, or for chat rows the last user message."""
    if row.get("prompt"):
        return str(row["prompt"])
    if row.get("messages"):
        messages = json.loads(row["messages"]) if isinstance(row["messages"], str) else row["messages"]
        users = [m.get("content", "") for m in messages if m.get("role") == "user"]
        return str(users[-1] if users else messages[-1].get("content", ""))
    return ""


def _chosen_keys(chosen_rows: list[dict[str, Any]], selection_path: Path | None) -> set[tuple[str, int]]:
    if chosen_rows and not all(key in chosen_rows[0] for key in ("id", "candidate")):
        raise GrapeError(
            f"{selection_path}: a selection needs the columns 'id' and 'candidate' (as written by `grape select`)"
        )
    return {(row["id"], row["candidate"]) for row in chosen_rows}
