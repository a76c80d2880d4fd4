"""A scores table as the stages after `grape score` read it (select, pairs, report): read once and checked, so
that a table that is not one, or a row with a field of the wrong type, is a one-line error naming the file, the
row (its place in the table, counted from 1) and the field, before anything is written."""

from __future__ import annotations

from typing import Any

from grape.data.read_rows import source_name
from grape.data.records import SCORED
from grape.data.tables import read_table_rows
from grape.errors import InputError

COLUMNS = ("id", "candidate", "source", "n_tokens", "mean_logprob", "status", "prompt", "messages", "response")


def read_scores_table(source: Any) -> list[dict[str, Any]]:
    """The rows of a scores table (a file, or rows in memory), checked by `check_scores_table`."""
    rows = read_table_rows(source)
    check_scores_table(rows, source_name(source))
    return rows


def check_scores_table(rows: list[dict[str, Any]], name: str) -> None:
    """Every row has the table's columns; every scored row has a numeric fit, its response text and a prompt.

    Rows whose input could not be read (``id`` None: `grape score` keeps them, counted) need nothing more.
    """
    if not rows:
        raise InputError(name, None, None, "the scores table has no rows (run grape score on some input)")
    for number, row in enumerate(rows, start=1):
        missing = next((column for column in COLUMNS if column not in row), None)
        if missing:
            raise InputError(name, number, missing, "no such field: not a scores table (run grape score first)")
        if row["id"] is None or row["status"] != SCORED:
            continue
        fit = row["mean_logprob"]
        if isinstance(fit, bool) or not isinstance(fit, int | float):
            raise InputError(name, number, "mean_logprob", f"a scored row needs a number, got {fit!r}")
        if not isinstance(row["response"], str):
            raise InputError(name, number, "response", f"a scored row needs the response text, got {row['response']!r}")
        if not isinstance(row["prompt"], str) and not isinstance(row["messages"], str):
            raise InputError(name, number, "prompt", f"a scored row needs a prompt (text) or messages, got "
                             f"{row['prompt']!r}")  # fmt: skip
