"""Read tool calls from a model's text without running anything.

Python calls, parsed by `ast` (never evaluated): ``get_weather(city='Paris')``, dotted names
(``math.factorial(number=5)``), several calls one per line, in a list ``[f(a=1), g(b=2)]`` (BFCL's
format) or comma-separated. Values are literals (strings, numbers, booleans, None, lists, tuples, dicts,
negative numbers); a bare name is read as its text (BFCL: a variable), and any other expression (``2*3``,
``f(x)``) as its source text, never computed. JSON calls too: ``{"name": ..., "arguments": {...}}`` (or
``"parameters"``, or OpenAI's ``{"function": {...}}``), alone or in a list, and Hermes-style
``<tool_call>{...}</tool_call>`` blocks. A Markdown code fence around the calls is allowed.

Each call comes with the character spans of its name and of its argument values in the original text:
the key-token weights find their tokens from these.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from typing import Any

from grape.tools.calls import ToolCall, chat_call

Span = tuple[int, int]  # [start, end) character offsets in the parsed text
_FENCE = re.compile(r"```[\w+-]*[ \t]*\n(?P<body>.*?)\n?```\Z", re.DOTALL)  # matched at the stripped text's bounds
_TOOL_CALL_TAG = re.compile(r"<tool_call>(?P<body>.*?)</tool_call>", re.DOTALL)


@dataclass(frozen=True)
class CallSpans:
    name: Span
    values: tuple[Span, ...]  # one per argument, positional ones first, then keywords in written order


@dataclass
class Parsed:
    calls: list[ToolCall] = field(default_factory=list)
    spans: list[CallSpans] = field(default_factory=list)
    error: str | None = None  # why no call could be read; None when `calls` is the text's calls


def parse_calls(text: str) -> Parsed:
    """The calls written in ``text`` (see the module's docstring), or an error saying why there are none."""
    if not text or not text.strip():
        return Parsed(error="empty text")
    tagged = list(_TOOL_CALL_TAG.finditer(text))
    if tagged:
        return _merge([_parse_json(text, m.start("body"), m.end("body")) for m in tagged])
    start, end = _strip(text, 0, len(text))
    fence = _FENCE.match(text, start, end)
    if fence:
        start, end = _strip(text, fence.start("body"), fence.end("body"))
    if text[start] in "{" or (text[start] == "[" and text[start + 1 : end].lstrip().startswith("{")):
        return _parse_json(text, start, end)
    return _parse_python(text, start, end)


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _merge(parts: list[Parsed]) -> Parsed:
    bad = next((p for p in parts if p.error), None)
    if bad is not None:
        return bad
    return Parsed([c for p in parts for c in p.calls], [s for p in parts for s in p.spans])


# --- Python -------------------------------------------------------------------------------------------


def _parse_python(text: str, start: int, end: int) -> Parsed:
    source = text[start:end]
    try:
        module = ast.parse(source, mode="exec")
    except SyntaxError as exc:
        return Parsed(error=f"not a call: {exc.msg} (line {exc.lineno})")
    position = _Positions(source, start)
    nodes: list[ast.expr] = []
    for statement in module.body:
        if not isinstance(statement, ast.Expr):
            return Parsed(error=f"not a call: an {type(statement).__name__} statement")
        value = statement.value
        nodes.extend(value.elts if isinstance(value, (ast.List, ast.Tuple)) else [value])
    parsed = Parsed()
    for node in nodes:
        name = _dotted_name(node.func) if isinstance(node, ast.Call) else None
        if name is None:
            return Parsed(error=f"not a call: {ast.unparse(node)[:60]}")
        assert isinstance(node, ast.Call)
        if any(isinstance(a, ast.Starred) for a in node.args) or any(k.arg is None for k in node.keywords):
            return Parsed(error=f"not a call: {name} unpacks arguments (* or **)")
        arguments = {k.arg: _literal(k.value) for k in node.keywords if k.arg is not None}
        if len(arguments) < len(node.keywords):
            return Parsed(error=f"not a call: {name} repeats a keyword argument")
        parsed.calls.append(ToolCall(name, arguments, tuple(_literal(a) for a in node.args)))
        values = [*node.args, *(k.value for k in node.keywords)]
        parsed.spans.append(CallSpans(position.span(node.func), tuple(position.span(v) for v in values)))
    if not parsed.calls:
        return Parsed(error="no call in the text")
    return parsed


def _dotted_name(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _literal(node: ast.expr) -> Any:
    """A value node as data: literals as they are, a bare name as its text, anything else as its source."""
    if isinstance(node, ast.Constant):
        return "..." if node.value is Ellipsis else node.value
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        inner = _literal(node.operand)
        if isinstance(inner, (int, float)) and not isinstance(inner, bool):
            return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.List | ast.Set):
        return [_literal(e) for e in node.elts]
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        return {_literal(k): _literal(v) for k, v in zip(node.keys, node.values, strict=True)}  # type: ignore[arg-type]
    if isinstance(node, ast.Name):
        return node.id
    return ast.unparse(node)


class _Positions:
    """ast's (line, UTF-8 byte column) positions as character offsets in the whole text."""

    def __init__(self, source: str, base: int):
        self.lines = source.split("\n")
        self.starts = [base]
        for line in self.lines[:-1]:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def offset(self, line: int, column: int) -> int:
        prefix = self.lines[line - 1].encode("utf-8")[:column].decode("utf-8", errors="ignore")
        return self.starts[line - 1] + len(prefix)

    def span(self, node: ast.expr) -> Span:
        assert node.end_lineno is not None and node.end_col_offset is not None
        return self.offset(node.lineno, node.col_offset), self.offset(node.end_lineno, node.end_col_offset)


# --- JSON ---------------------------------------------------------------------------------------------

_DECODER = json.JSONDecoder()


def _parse_json(text: str, start: int, end: int) -> Parsed:
    start, end = _strip(text, start, end)
    try:
        entries = _json_items(text[:end], start)
    except (ValueError, IndexError) as exc:
        return Parsed(error=f"not a call: malformed JSON ({str(exc).split(':')[0]})")
    parsed = Parsed()
    for value, members in entries:
        call = chat_call(value)
        if call is None:
            return Parsed(error='not a call: a JSON call is {"name": ..., "arguments": {...}}')
        body = members
        if "function" in members and isinstance(value.get("function"), dict):
            body = _object_members(text, members["function"][0][0])[0]
        name_span = body["name"][0]
        arguments = body.get("arguments") or body.get("parameters")
        values: tuple[Span, ...] = ()
        if arguments is not None and text[arguments[0][0]] == "{":
            values = tuple(s for s, _ in _object_members(text, arguments[0][0])[0].values())
        parsed.spans.append(CallSpans((name_span[0] + 1, name_span[1] - 1), values))  # inside the quotes
        parsed.calls.append(call)
    if not parsed.calls:
        return Parsed(error="no call in the text")
    return parsed


def _json_items(text: str, start: int) -> list[tuple[Any, dict[str, tuple[Span, Any]]]]:
    """The JSON object at ``start``, or each object of the array there: (value, its members with their spans)."""
    value, end = _DECODER.raw_decode(text, start)
    if end != len(text):
        raise ValueError("extra text after the JSON value")
    starts = [start] if isinstance(value, dict) else _array_element_starts(text, start)
    items = []
    for at in starts:
        items.append((_DECODER.raw_decode(text, at)[0], _object_members(text, at)[0]))
    return items


def _array_element_starts(text: str, start: int) -> list[int]:
    starts, at = [], _skip(text, start + 1)
    while text[at] != "]":
        starts.append(at)
        at = _skip(text, _DECODER.raw_decode(text, at)[1])
        if text[at] == ",":
            at = _skip(text, at + 1)
    return starts


def _object_members(text: str, start: int) -> tuple[dict[str, tuple[Span, Any]], int]:
    """The members of the JSON object at ``start``: key -> (the value's span, the value); and the object's end."""
    if text[start] != "{":
        raise ValueError("expected an object")
    members, at = {}, _skip(text, start + 1)
    while text[at] != "}":
        key, at = json.decoder.scanstring(text, at + 1)  # type: ignore[attr-defined]
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("expected ':'")
        begin = _skip(text, at + 1)
        value, stop = _DECODER.raw_decode(text, begin)
        members[key] = ((begin, stop), value)
        at = _skip(text, stop)
        if text[at] == ",":
            at = _skip(text, at + 1)
    return members, at + 1


def _skip(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t\r\n":
        at += 1
    return at
