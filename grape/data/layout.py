"""Turn raw rows into `Instruction`s: the grouped and long layouts, column mapping, validation.

Every problem is reported as (file, row, field, reason). With ``on_error="fail"`` the first one
raises `InputError`; with ``"skip"`` the row or candidate is kept and marked, so that nothing is lost.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, fields
from typing import Any, Literal

from grape.data.read_rows import RawRow, read_rows, source_name
from grape.data.records import Candidate, Instruction
from grape.data.surrogates import first_lone_surrogate, without_lone_surrogates
from grape.errors import GrapeError, InputError

OnError = Literal["fail", "skip"]


@dataclass
class Columns:
    """Input column names. ``None`` means: try the usual names (TRL, AlpacaEval) in order."""

    id: str | None = None
    prompt: str | None = None  # a string, or a chat list of {role, content}
    candidates: str | None = None  # grouped layout: list of {text, source}
    response: str | None = None  # long layout: one response per row
    source: str | None = None  # long layout: the generator's name
    answer: str | None = None
    text_key: str = "text"  # keys inside each grouped candidate
    source_key: str = "source"

    @classmethod
    def parse(cls, spec: str | None) -> Columns:
        """Parse ``"prompt=instruction,response=output"`` (the CLI's --columns)."""
        columns = cls()
        names = {f.name for f in fields(cls)}
        for item in filter(None, (spec or "").split(",")):
            key, sep, value = item.partition("=")
            if not sep or key.strip() not in names or not value.strip():
                raise GrapeError(f"--columns: '{item}' is not NAME=COLUMN with NAME one of {sorted(names)}")
            setattr(columns, key.strip(), value.strip())
        return columns


_DEFAULTS = {
    "id": ("id",),
    "prompt": ("prompt", "messages", "instruction", "question"),
    "candidates": ("candidates",),
    "response": ("response", "output", "completion"),
    "source": ("source", "generator", "model"),
    "answer": ("answer",),
}


def load_instructions(
    path: Any,
    columns: Columns | None = None,
    layout: Literal["auto", "grouped", "long"] = "auto",
    on_error: OnError = "fail",
    split: str | None = None,
    rows: list[RawRow] | None = None,
    subset: str | None = None,
    revision: str | None = None,
) -> list[Instruction]:
    """Read and validate an input into instructions, in input order.

    ``path``: anything `read_rows` reads (a file, a datasets directory, a Hub id with ``split``,
    ``subset`` and ``revision``, a ``datasets.Dataset``, a list of dicts). ``rows``: its rows when the
    caller has read them already (it needs the raw rows too), so that an input is read once.
    """
    columns = columns or Columns()
    rows = list(read_rows(path, split, subset, revision)) if rows is None else rows
    file = source_name(path)
    present = _columns_present(r.data for r in rows if r.data is not None)
    _check_mapped(columns, present, rows, file)
    names = {key: _column(columns, key, present) for key in _DEFAULTS}
    if layout == "auto":
        layout = "long" if names["candidates"] is None and names["response"] is not None else "grouped"
    problems = _Problems(file, on_error)
    if layout == "grouped":
        instructions = [_grouped(row, names, columns, problems) for row in rows]
    else:
        instructions = _long(rows, names, columns, problems)
    _mark_duplicate_ids(instructions, problems)
    return instructions


def _prompt_column(data: dict[str, Any], names: dict, columns: Columns) -> str | None:
    """The prompt column of this row: the mapped one, else the first usual name the row has (so that
    rows with a `prompt` string and rows with a `messages` list can share a file)."""
    if columns.prompt is not None:
        return columns.prompt
    return next((name for name in _DEFAULTS["prompt"] if data.get(name) is not None), names["prompt"])


def _column(columns: Columns, key: str, present: dict[str, None]) -> str | None:
    chosen = getattr(columns, key)
    if chosen is not None:
        return chosen
    return next((name for name in _DEFAULTS[key] if name in present), None)


def _columns_present(rows: Iterable[dict[str, Any]]) -> dict[str, None]:
    """Every column some row has, in the order first seen: a column is chosen, and the layout told, from all
    rows, not from the first (whose answer, source or response may be missing where the others have one)."""
    present: dict[str, None] = {}
    for data in rows:
        present.update(dict.fromkeys(data))
    return present


def _check_mapped(columns: Columns, present: dict[str, None], rows: list[RawRow], file: str) -> None:
    """Refuse a --columns mapping to a column no row has (a typo would otherwise read every row as missing it)."""
    if not present:
        return  # no readable row: each is reported as unreadable
    for key in _DEFAULTS:
        name = getattr(columns, key)
        if name is not None and name not in present:
            raise GrapeError(f"{file}: --columns {key}={name}: no row has a column '{name}' "
                             f"(columns: {_listed(present)})")  # fmt: skip
    mapped = [(key, getattr(columns, key)) for key, default in (("text_key", "text"), ("source_key", "source"))
              if getattr(columns, key) != default]  # fmt: skip
    if not mapped:
        return
    field = columns.candidates or "candidates"
    lists = (r.data.get(field) for r in rows if isinstance(r.data, dict))
    keys = _columns_present(c for items in lists if isinstance(items, list) for c in items if isinstance(c, dict))
    for key, name in mapped:
        if keys and name not in keys:
            raise GrapeError(f"{file}: --columns {key}={name}: no candidate has a key '{name}' (keys: {_listed(keys)})")


def _listed(names: dict[str, None], most: int = 12) -> str:
    shown = list(names)[:most]
    return ", ".join(shown) + (f", … ({len(names)} in all)" if len(names) > most else "")


class _Problems:
    def __init__(self, file: str, on_error: OnError):
        if on_error not in ("fail", "skip"):
            raise GrapeError(f"on_error must be 'fail' or 'skip', not {on_error!r}")
        self.file, self.on_error = file, on_error
        self.fields: list[str | None] = []  # skip mode: the field of each problem, in the order found

    def report(self, row: int, field: str | None, reason: str, message: str) -> str:
        """Raise in fail-fast mode; otherwise return the reason to record as a skip status."""
        if self.on_error == "fail":
            raise InputError(self.file, row, field, message)
        self.fields.append(field)
        return reason

    def first_field(self, since: int) -> str | None:
        """The field of the first problem found after ``since`` (``len(fields)`` taken before): the one whose
        reason a record keeps, as every check keeps the first reason reported (``a or b``)."""
        return self.fields[since] if len(self.fields) > since else None


def _prompt(data: dict[str, Any], name: str | None, row: int, problems: _Problems):
    """Return (prompt, skip_reason)."""
    value = data.get(name) if name else None
    if value is None:
        return None, problems.report(row, name or "prompt", "missing_prompt", "missing prompt")
    if isinstance(value, str):
        if not value.strip():
            return None, problems.report(row, name, "invalid_prompt", "empty prompt")
        return value, None
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return [{"role": m["role"], "content": m["content"]} for m in value], None
    return None, problems.report(row, name, "invalid_prompt", "expected a string or a list of {role, content} messages")


def _lone_surrogate(value: Any, row: int, problems: _Problems, path: str = "") -> str | None:
    """The skip reason when a string in ``value`` holds a lone surrogate (see surrogates.py), else None."""
    hit = first_lone_surrogate(value, path)
    return problems.report(row, hit[0], "lone_surrogate", hit[1]) if hit else None


def _is_message(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("role"), str) and isinstance(item.get("content"), str)


def _response(value: Any, row: int, field: str, problems: _Problems) -> str | None:
    """Return the skip reason of a bad response text, or None when it is fine."""
    if value is None:
        return problems.report(row, field, "missing_response", "missing response text")
    if not isinstance(value, str):
        return problems.report(row, field, "invalid_response", f"expected a string, got {type(value).__name__}")
    if not value.strip():
        return problems.report(row, field, "empty_response", "empty response")
    return None


def _identifier(data: dict[str, Any], name: str | None, row: int, problems: _Problems, prompt: Any):
    value = data.get(name) if name else None
    if value is None:
        if name is not None and name in data:
            return None, problems.report(row, name, "invalid_id", "id is null")
        return _prompt_hash(prompt) if prompt is not None else f"row-{row}", None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None, problems.report(
            row, name, "invalid_id", f"expected a string or integer, got {type(value).__name__}"
        )
    return str(value), None


def _prompt_hash(prompt: Any) -> str:
    text = prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True, ensure_ascii=False)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]


def _grouped(raw: RawRow, names: dict, columns: Columns, problems: _Problems) -> Instruction:
    if raw.data is None:
        reason = problems.report(raw.row, None, raw.reason, raw.error or "unreadable row")
        return Instruction(None, None, [], file=problems.file, row=raw.row, skip_reason=reason)
    field = names["candidates"] or "candidates"
    since = len(problems.fields)
    lone = _lone_surrogate({k: v for k, v in raw.data.items() if k != field}, raw.row, problems)
    data = without_lone_surrogates(raw.data)  # what the output keeps of the row's text
    prompt, skip = _prompt(data, _prompt_column(data, names, columns), raw.row, problems)
    ident, id_skip = _identifier(data, names["id"], raw.row, problems, prompt)
    skip = lone or skip or id_skip
    answer = data.get(names["answer"]) if names["answer"] else None
    values = raw.data.get(field)  # as read: each candidate is checked for lone surrogates on its own
    if not isinstance(values, list) or not values:
        reason = (
            "missing_candidates"
            if values is None
            else "invalid_candidates"
            if not isinstance(values, list)
            else "empty_candidates"
        )
        message = {
            "missing_candidates": "missing candidate list",
            "invalid_candidates": "expected a list",
            "empty_candidates": "empty candidate list",
        }[reason]
        skip = skip or problems.report(raw.row, field, reason, message)
        return Instruction(ident, prompt, [], answer, problems.file, raw.row, skip, problems.first_field(since))
    skip_field = problems.first_field(since)  # before the candidates' own problems
    candidates = [_grouped_candidate(item, i, raw.row, field, columns, problems) for i, item in enumerate(values)]
    return Instruction(ident, prompt, candidates, answer, problems.file, raw.row, skip, skip_field)


def _grouped_candidate(item: Any, index: int, row: int, field: str, columns: Columns, problems: _Problems):
    where = f"{field}[{index}]"
    since = len(problems.fields)
    lone = _lone_surrogate(item, row, problems, where)
    item = without_lone_surrogates(item)
    if isinstance(item, str):  # a bare list of texts is accepted too
        skip = lone or _response(item, row, where, problems)
        return Candidate(item, None, skip, skip_field=problems.first_field(since))
    if not isinstance(item, dict):
        reason = problems.report(row, where, "invalid_candidate", f"expected an object, got {type(item).__name__}")
        return Candidate(None, None, reason, skip_field=where, given=item)
    text = item.get(columns.text_key)
    source = item.get(columns.source_key)
    skip = lone or _response(text, row, f"{where}.{columns.text_key}", problems)
    wrong = not isinstance(text, (str, type(None))) or not isinstance(source, (str, type(None)))
    if source is not None and not isinstance(source, str):
        skip = skip or problems.report(row, f"{where}.{columns.source_key}", "invalid_source", "expected a string")
        source = None
    extra = {k: v for k, v in item.items() if k not in (columns.text_key, columns.source_key)}
    return Candidate(text if isinstance(text, str) else None, source, skip, extra=extra,
                     skip_field=problems.first_field(since), given=item if wrong else None)  # fmt: skip


def _long(rows: Iterable[RawRow], names: dict, columns: Columns, problems: _Problems) -> list[Instruction]:
    """One row per response; rows are grouped by id when there is an id column, else by prompt."""
    groups: dict[str, Instruction] = {}
    out: list[Instruction] = []
    for raw in rows:
        if raw.data is None:
            reason = problems.report(raw.row, None, raw.reason, raw.error or "unreadable row")
            out.append(Instruction(None, None, [], file=problems.file, row=raw.row, skip_reason=reason))
            continue
        own = {names["response"], names["source"]}  # the candidate's own fields; the rest is the instruction's
        since = len(problems.fields)
        lone = _lone_surrogate({k: v for k, v in raw.data.items() if k not in own}, raw.row, problems)
        data = without_lone_surrogates(raw.data)
        prompt, skip = _prompt(data, _prompt_column(data, names, columns), raw.row, problems)
        skip = lone or skip
        ident, id_skip = _identifier(data, names["id"], raw.row, problems, prompt)
        skip_field = problems.first_field(since)  # the instruction's problems are found before the candidate's
        cand_since = len(problems.fields)
        cand_lone = _lone_surrogate({k: v for k, v in raw.data.items() if k in own}, raw.row, problems)
        text = data.get(names["response"]) if names["response"] else None
        source = data.get(names["source"]) if names["source"] else None
        cand_skip = cand_lone or _response(text, raw.row, names["response"] or "response", problems)
        wrong = not isinstance(text, (str, type(None))) or not isinstance(source, (str, type(None)))
        if source is not None and not isinstance(source, str):  # as in the grouped layout: reported, kept as given
            cand_skip = cand_skip or problems.report(raw.row, names["source"], "invalid_source", "expected a string")
        candidate = Candidate(
            text if isinstance(text, str) else None,
            source if isinstance(source, str) else None,
            cand_skip,
            row=raw.row,
            skip_field=problems.first_field(cand_since),
            given={"text": text, "source": source} if wrong else None,
        )
        if skip or id_skip:  # cannot be grouped: an instruction of its own
            if candidate.skip_reason is None:
                candidate.skip_reason, candidate.skip_field = skip or id_skip, skip_field
            out.append(Instruction(ident, prompt, [candidate], file=problems.file, row=raw.row,
                                   skip_reason=skip or id_skip, skip_field=skip_field))  # fmt: skip
            continue
        group = groups.get(ident)
        if group is None:
            answer = data.get(names["answer"]) if names["answer"] else None
            group = groups[ident] = Instruction(ident, prompt, [], answer, problems.file, raw.row)
            out.append(group)
        elif group.prompt != prompt:
            candidate.skip_reason = problems.report(
                raw.row,
                names["prompt"],
                "prompt_mismatch",
                f"id '{ident}' has a different prompt here than in row {group.row}",
            )
            candidate.skip_field = names["prompt"]
        group.candidates.append(candidate)
    return out


def _mark_duplicate_ids(instructions: list[Instruction], problems: _Problems) -> None:
    seen: dict[str, int] = {}
    for inst in instructions:
        if inst.id is None or inst.skip_reason:
            continue
        if inst.id in seen:
            inst.skip_reason = problems.report(
                inst.row,
                "id",
                "duplicate_id",
                f"duplicate id '{inst.id}' (first seen in row {seen[inst.id]})",
            )
            inst.skip_field = "id"
        else:
            seen[inst.id] = inst.row
