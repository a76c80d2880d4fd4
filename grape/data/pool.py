"""The candidate pool: every instruction with its candidates, as grouped-layout rows, read from any input.

The input may be a plain list of prompts (JSONL/Parquet rows with a prompt and no candidates, or a
.txt file with one prompt per line), or a grouped or long file that already has candidates. Rows come
out in the grouped layout with the usual column names (``id``, ``prompt`` or ``messages``, ``answer``,
``candidates: [{text, source, ...}]``); other input columns (e.g. a code item's ``tests``) are kept.
"""

from __future__ import annotations

import hashlib
from dataclasses import fields
from pathlib import Path
from typing import Any

from grape.data.layout import Columns, load_instructions
from grape.data.read_rows import read_rows, source_name
from grape.data.records import Candidate, Instruction
from grape.errors import GrapeError, InputError

Row = dict[str, Any]
# Input columns that the grouped row rewrites under their usual names (the rest are carried as they are).
_KNOWN = {"id", "prompt", "messages", "instruction", "question", "candidates", "response", "output", "completion",
          "source", "generator", "model", "answer"}  # fmt: skip
_NO_CANDIDATES = ("missing_candidates", "empty_candidates")
SKIP_KEY = "skip_reason"  # set on a row that could not be read (kept, so that no row disappears)


def read_pool(
    path: Any,
    columns: Columns | None = None,
    layout: str = "auto",
    on_error: str = "fail",
    split: str | None = None,
    subset: str | None = None,
    revision: str | None = None,
    allow_empty: bool = False,
) -> list[Row]:
    """Read instructions (with or without candidates) as grouped rows, in input order. ``path``: anything
    `read_rows` reads (a file, a Hub id with ``split``/``subset``/``revision``, a Dataset, a list of dicts). An
    input without a single row is an error (a stage would write an empty output, maybe over an earlier one),
    unless ``allow_empty``."""
    if isinstance(path, (str, Path)) and Path(path).suffix == ".txt":
        return _prompt_lines(Path(path))  # refuses a file without prompts itself
    columns = columns or Columns()
    # Read tolerantly, then judge: a row without candidates is fine here (it is what generation is for).
    raw_rows = list(read_rows(path, split, subset, revision))  # read once: validated, their extra columns carried
    instructions = load_instructions(path, columns, layout, "skip", split, rows=raw_rows)
    raw = {r.row: r.data for r in raw_rows}
    mapped = {getattr(columns, f.name) for f in fields(Columns)} - {None}
    rows, seen = [], {}
    for inst in instructions:
        if inst.skip_reason in _NO_CANDIDATES:
            inst.skip_reason = inst.skip_field = None
        if inst.skip_reason is None and inst.id in seen:
            inst.skip_reason, inst.skip_field = "duplicate_id", columns.id or "id"
        if inst.skip_reason and on_error == "fail":
            detail = f" (first seen in row {seen[inst.id]})" if inst.skip_reason == "duplicate_id" else ""
            raise InputError(source_name(path), inst.row, inst.skip_field, inst.skip_reason.replace("_", " ") + detail)
        # A value no generator writes (text 7): refused, or with skip the row is skipped with it as given; never nulled.
        wrong = next((c for c in inst.candidates if c.given is not None), None)
        if wrong is not None and on_error == "fail":
            reason = (wrong.skip_reason or "invalid_candidate").replace("_", " ")
            raise InputError(source_name(path), wrong.row or inst.row, wrong.skip_field, f"{reason}: a candidate is "
                             "an object whose text and source are strings")  # fmt: skip
        if wrong is not None and not inst.skip_reason:
            inst.skip_reason, inst.skip_field = wrong.skip_reason or "invalid_candidate", wrong.skip_field
        seen.setdefault(inst.id, inst.row)
        carried = {k: v for k, v in (raw.get(inst.row) or {}).items() if k not in _KNOWN | mapped}
        rows.append(grouped_row(inst, carried))
    if not rows and not allow_empty:
        raise InputError(source_name(path), None, None, "no rows: nothing to read")
    return rows


def grouped_row(inst: Instruction, carried: Row | None = None) -> Row:
    row: Row = dict(carried or {})
    row["id"] = inst.id
    row["messages" if isinstance(inst.prompt, list) else "prompt"] = inst.prompt
    if inst.answer is not None:
        row["answer"] = inst.answer
    row["candidates"] = [candidate_dict(c) for c in inst.candidates]
    if inst.skip_reason:
        row[SKIP_KEY] = inst.skip_reason
    return row


def candidate_dict(candidate: Candidate) -> Any:
    """The candidate as a pool row holds it: ``{text, source, ...}``, or as given where a value had the wrong type."""
    if candidate.given is not None:
        return candidate.given
    return {"text": candidate.text, "source": candidate.source, **candidate.extra}


def prompt_of(row: Row) -> Any:
    return row.get("messages") if row.get("messages") is not None else row.get("prompt")


def item_of(row: Row) -> Row:
    """The instruction's fields without its candidates: what a verifier sees as ``item``."""
    return {k: v for k, v in row.items() if k != "candidates"}


def same_instructions(base: list[Row], fresh: list[Row], where: str) -> None:
    """Refuse to extend an existing output that holds other instructions than the input."""
    ids_base, ids_fresh = [r["id"] for r in base], [r["id"] for r in fresh]
    if ids_base != ids_fresh:
        missing = sorted(set(ids_fresh) - set(ids_base), key=str)[:3]
        raise GrapeError(
            f"{where} exists but holds other instructions than the input (e.g. missing {missing}): "
            "delete it, or write to another -o"
        )


def _prompt_lines(path: Path) -> list[Row]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, None, f"cannot read the file ({exc})") from exc
    rows, seen = [], set()
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        ident = hashlib.sha1(line.strip().encode("utf-8")).hexdigest()[:12]
        if ident in seen:
            raise InputError(str(path), number, None, "duplicate prompt")
        seen.add(ident)
        rows.append({"id": ident, "prompt": line.strip(), "candidates": []})
    if not rows:
        raise InputError(str(path), None, None, "no prompts in the file")
    return rows
