"""Read BFCL v4's files: question turns, JSON-schema functions, and the possible_answer key.

``BFCL_v4_<category>.json`` holds one object a line: ``{"id", "question": [[{"role", "content"}...]...],
"function": [...]}``; ``possible_answer/BFCL_v4_<category>.json`` the gold: ``{"id", "ground_truth"}``.
- single-turn categories (simple_python, multiple, parallel, parallel_multiple and their live_ versions):
  one `Sample` per question, gold = the ground truth, target = its first accepted values (`GoldCall.canonical`);
- irrelevance and live_irrelevance have no answer file: no call is right (gold ``[]``, no target text);
- live_relevance has no answer key (any relevant call would do): gold None, judged as unknown;
- multi_turn_base: the question's user turns with the gold calls of each (call strings, read by the parser,
  positional arguments bound to the documented parameters) as assistant turns; the tools come from
  ``multi_turn_func_doc/`` for the entry's ``involved_classes``, less its ``excluded_function``. BFCL runs
  these against live back ends and has no tool outputs in its files, so the trajectories have none either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.errors import InputError
from grape.tools.calls import GoldError, keyword_calls, read_gold
from grape.tools.parse import parse_calls
from grape.tools.render import chat_tool_message
from grape.tools.samples import Sample
from grape.tools.tool_docs import Tool, ToolDocError, read_tool, read_tools

# BFCL's class names and their documentation files (bfcl_eval/constants/category_mapping.py).
MULTI_TURN_DOCS = {
    "GorillaFileSystem": "gorilla_file_system.json", "MathAPI": "math_api.json", "MessageAPI": "message_api.json",
    "TwitterAPI": "posting_api.json", "TicketAPI": "ticket_api.json", "TradingBot": "trading_bot.json",
    "TravelAPI": "travel_booking.json", "VehicleControlAPI": "vehicle_control.json",
}  # fmt: skip
_NO_CALL = re.compile(r"^(live_)?irrelevance_")
_NO_KEY = re.compile(r"^live_relevance_")


@dataclass
class Trajectory:
    """A multi-turn conversation whose assistant turns are the targets (see clean_turns.split_turns)."""

    id: str
    messages: list[dict[str, Any]]
    tools: list[Tool]


def is_bfcl_row(row: dict[str, Any]) -> bool:
    """BFCL's layout: ``question`` a list of turns (each row is then checked for its id and tools)."""
    return isinstance(row.get("question"), list)


def read_answers(path: str | Path) -> dict[str, Any]:
    """id -> ground truth, from a possible_answer file."""
    answers = {}
    for number, row in _json_lines(Path(path)):
        if not isinstance(row.get("id"), str) or "ground_truth" not in row:
            raise InputError(str(path), number, None, "expected {id, ground_truth}")
        answers[row["id"]] = row["ground_truth"]
    return answers


def bfcl_entries(path: str | Path, answers: dict[str, Any] | None, docs: str | Path | None = None
                 ) -> Iterator[Sample | Trajectory]:  # fmt: skip
    """Each question of a BFCL file as a `Sample` (single turn) or a `Trajectory` (multi-turn)."""
    path = Path(path)
    docs_dir = Path(docs) if docs else path.parent / "multi_turn_func_doc"
    for number, row in _json_lines(path):
        ident = row.get("id")
        if not isinstance(ident, str) or not is_bfcl_row(row):
            raise InputError(str(path), number, None, "not a BFCL question: expected {id, question, function}")
        if "function" not in row and "involved_classes" not in row:
            raise InputError(str(path), number, "function", "missing: a BFCL question lists its tools there "
                             "(or, multi-turn, its involved_classes)")  # fmt: skip
        try:
            if "involved_classes" in row:
                yield _trajectory(row, _answer(answers, ident, str(path), number), docs_dir)
            else:
                yield _single_turn(row, answers, str(path), number)
        except (GoldError, ToolDocError) as exc:
            raise InputError(str(path), number, None, str(exc)) from exc


def _single_turn(row: dict[str, Any], answers: dict[str, Any] | None, file: str, number: int) -> Sample:
    ident, turns = row["id"], row["question"]
    if len(turns) != 1 or not _is_messages(turns[0]):
        raise InputError(file, number, "question", "expected one turn: [[{role, content}, ...]]")
    tools = read_tools(row["function"])
    if _NO_CALL.match(ident):
        return Sample(ident, turns[0], tools, [], None)
    if _NO_KEY.match(ident) and (answers is None or ident not in answers):
        return Sample(ident, turns[0], tools, None, None)
    gold = _answer(answers, ident, file, number)
    documented = {tool.name: tool for tool in tools}
    return Sample(ident, turns[0], tools, gold, [g.canonical(documented.get(g.name)) for g in read_gold(gold)])


def _trajectory(row: dict[str, Any], gold: Any, docs_dir: Path) -> Trajectory:
    tools = _multi_turn_tools(row, docs_dir)
    turns = row["question"]
    if not isinstance(gold, list) or len(gold) != len(turns):
        raise GoldError(f"expected one list of call strings per question turn ({len(turns)})")
    messages: list[dict[str, Any]] = []
    for turn, call_strings in zip(turns, gold, strict=True):
        messages.extend(turn)
        parsed = parse_calls("\n".join(call_strings)) if call_strings else None
        if parsed is not None and parsed.error:
            raise GoldError(f"gold calls {call_strings!r}: {parsed.error}")
        calls = keyword_calls(parsed.calls, tools) if parsed is not None else []
        messages.append(chat_tool_message(calls) if calls else {"role": "assistant", "content": ""})
    return Trajectory(row["id"], messages, tools)


def _multi_turn_tools(row: dict[str, Any], docs_dir: Path) -> list[Tool]:
    excluded = set(row.get("excluded_function") or [])
    tools = []
    for name in row["involved_classes"]:
        if name not in MULTI_TURN_DOCS:
            raise ToolDocError(f"unknown BFCL class {name!r}: known {', '.join(MULTI_TURN_DOCS)}")
        file = docs_dir / MULTI_TURN_DOCS[name]
        if not file.is_file():
            raise ToolDocError(f"{file}: no such file (pass the multi_turn_func_doc folder)")
        tools += [read_tool(entry) for _, entry in _json_lines(file)]
    return [t for t in tools if t.name not in excluded]


def _answer(answers: dict[str, Any] | None, ident: str, file: str, number: int) -> Any:
    if answers is None:
        raise InputError(file, number, None, f"{ident} needs an answer key: pass its possible_answer file")
    if ident not in answers:
        raise InputError(file, number, "id", f"{ident} is not in the answer file")
    return answers[ident]


def _json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.is_file():
        raise InputError(str(path), None, None, "no such file")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(str(path), number, None, f"malformed JSON ({exc.msg})") from exc
            if not isinstance(row, dict):
                raise InputError(str(path), number, None, "expected a JSON object")
            yield number, row


def _is_messages(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in value)
