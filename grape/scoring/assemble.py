"""Assemble the scores table: one row per input candidate, in input order, from the saved outcomes.

Rows are built from the current input, not copied from the parts: the parts hold only what the model
computed (status, token count, log-probability), keyed by instruction and candidate.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from grape.data.records import SCORED, Instruction, skipped
from grape.errors import InputError
from grape.scoring.parts import CandidateResult

SCORES_SCHEMA = pa.schema([
    ("id", pa.string()), ("candidate", pa.int64()), ("source", pa.string()), ("n_tokens", pa.int64()),
    ("sum_logprob", pa.float64()), ("mean_logprob", pa.float64()), ("status", pa.string()),
    ("row", pa.int64()), ("prompt", pa.string()), ("messages", pa.string()), ("response", pa.string()),
    ("answer", pa.string()), ("correct", pa.bool_()),
])  # fmt: skip
_NO_VALUES = dict.fromkeys(SCORES_SCHEMA.names)  # every row has every column (JSONL too), in the schema's order


def scores_rows(
    instructions: list[Instruction], keys: list[str | None], outcomes: Mapping[tuple[str, int], CandidateResult]
) -> list[dict[str, Any]]:
    """The scores table. ``keys[i]`` is instruction i's key when it was sent to the scorer, else None."""
    rows = []
    for inst, key in zip(instructions, keys, strict=True):
        common = {
            "id": inst.id, "row": inst.row,
            "prompt": inst.prompt_text, "messages": json.dumps(inst.messages) if inst.messages else None,
            "answer": _json_or_none(inst.answer),
        }  # fmt: skip
        if not inst.candidates:
            rows.append({**_NO_VALUES, **common, "status": skipped(inst.skip_reason)})
            continue
        for k, cand in enumerate(inst.candidates):
            row = {
                **_NO_VALUES,
                **common,
                "candidate": k,
                "source": cand.source,
                "response": cand.text,
                "row": cand.row or inst.row,
                "correct": cand.extra.get("correct"),
            }
            outcome = outcomes.get((key, k)) if key is not None and cand.skip_reason is None else None
            if outcome is None:
                row["status"] = skipped(cand.skip_reason or inst.skip_reason or "unscored")
            elif outcome.status == SCORED:
                total, n = outcome.sum_logprob, outcome.n_tokens
                row.update(n_tokens=n, sum_logprob=total, mean_logprob=total / n, status=SCORED)
            else:
                row["status"] = outcome.status
            rows.append(row)
    return rows


def raise_first_problem(inst: Instruction, candidate: int, outcome: CandidateResult) -> None:
    """Fail-fast mode: report a candidate the scorer could not score against its input row."""
    if outcome.detail is None:
        return
    if outcome.status == skipped("invalid_prompt"):
        raise InputError(inst.file, inst.row, "prompt", outcome.detail)
    raise InputError(inst.file, inst.candidates[candidate].row or inst.row, f"candidates[{candidate}]", outcome.detail)


def status_counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {"rows": len(rows)}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def _json_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)
