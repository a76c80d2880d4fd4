"""The item's gold answer as one more candidate (S3FT's last resort): no model call, source ``reference``.

``reference_field`` names a field of the row as generate reads it: ``answer`` (the column mapped to it,
GSM8K's worked solution), or any other column the row carries (e.g. SVAMP's ``answer_cot``). A row
without a usable value gets no reference candidate and is counted (with the first few ids) in the
sidecar; a row that already has a ``reference`` candidate (an earlier run, or the input's own) keeps it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from grape.data.pool import Row

REFERENCE_SOURCE = "reference"
_SHOWN = 5  # missing ids listed in the sidecar


@dataclass
class ReferenceReport:
    field: str
    added: int = 0
    existing: int = 0  # rows that already had a reference candidate
    missing: int = 0  # rows without a usable value in the field
    missing_ids: list[str] = field(default_factory=list)  # the first few of them


def add_references(rows: Iterable[Row], field_name: str) -> ReferenceReport:
    """Append the text of ``row[field_name]`` to each row's candidates (source ``reference``, sample 0)."""
    report = ReferenceReport(field_name)
    for row in rows:
        if any(c.get("source") == REFERENCE_SOURCE for c in row["candidates"]):
            report.existing += 1
            continue
        text = reference_text(row.get(field_name))
        if text is None:
            report.missing += 1
            if len(report.missing_ids) < _SHOWN:
                report.missing_ids.append(str(row["id"]))
            continue
        row["candidates"].append(
            {"text": text, "source": REFERENCE_SOURCE, "sample": 0, "n_tokens": None, "finish_reason": None}
        )
        report.added += 1
    return report


def reference_text(value: Any) -> str | None:
    """A non-empty string as it is, a number as its text (a bare gold answer); anything else is no reference."""
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return None
