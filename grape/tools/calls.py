"""Calls and gold answers.

A `ToolCall` is what a model wrote: a (dotted) name, keyword arguments, and positional ones (kept apart:
they bind to the tool's documented parameters in order, as Python binds them, see `bind`).

A gold answer is BFCL's ``possible_answer`` form, one entry per expected call:
``[{"get_weather": {"city": ["Paris", "paris"], "unit": ["celsius", ""]}}]``: each argument lists the
values accepted, and ``""`` among them marks an argument that may be left out. ``[]`` means that no call is
right (BFCL's irrelevance). Chat ``tool_calls`` (``{"type": "function", "function": {"name", "arguments"}}``
or ``{"name", "arguments"}``, arguments as an object or a JSON string) read into the same form, each value
being the one accepted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from grape.tools.tool_docs import Tool

OPTIONAL = ""  # BFCL's marker, among a gold argument's accepted values, of an argument that may be left out


class GoldError(ValueError):
    """A gold answer that is not one (the caller names the file, row and field)."""


@dataclass(frozen=True)
class ToolCall:
    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    positional: tuple[Any, ...] = ()


@dataclass(frozen=True)
class GoldCall:
    name: str
    accepted: dict[str, list[Any]]  # argument -> the values accepted ("" among them: it may be left out)

    def canonical(self, tool: Tool | None = None) -> ToolCall:
        """The call written from the first accepted value of each argument, inside dict values too.

        An argument whose first accepted value is "" is left out, unless ``tool`` requires it: then it takes
        its first other accepted value (or "" itself, which BFCL then accepts as a string). An optional
        argument that ``tool`` does not document is left out (BFCL's key lists a few)."""
        arguments = {}
        for name, values in self.accepted.items():
            required = tool is not None and name in tool.required
            if tool is not None and name not in tool.properties and OPTIONAL in values:
                continue
            given = [v for v in values if v != OPTIONAL] if required else values[:1]
            if given and given[0] != OPTIONAL:
                arguments[name] = first_accepted(given[0])
            elif required and OPTIONAL in values:
                arguments[name] = OPTIONAL
        return ToolCall(self.name, arguments)


def exact_accepted(value: Any) -> Any:
    """A value as BFCL's answer key writes it: a dict's values (and those of a list of dicts) as lists of the
    accepted values, ``{"size": ["large"]}``; any other value as it is."""
    if isinstance(value, dict):
        return {k: [v] for k, v in value.items()}
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return [exact_accepted(v) for v in value]
    return value


def first_accepted(option: Any) -> Any:
    """The inverse of `exact_accepted` for one accepted option: each dict key's first accepted value ("" first:
    the key is left out)."""
    if isinstance(option, dict) and all(isinstance(v, list) for v in option.values()):
        return {k: first_accepted(v[0]) for k, v in option.items() if v and v[0] != OPTIONAL}
    if isinstance(option, list) and option and all(isinstance(v, dict) for v in option):
        return [first_accepted(v) for v in option]
    return option


def bind(call: ToolCall, tool: Tool | None) -> tuple[dict[str, Any], list[str]]:
    """The call's arguments by name, positional ones bound to the tool's parameters in documented order.

    Returns (arguments, problems): a positional argument with no parameter left for it (or no tool
    documentation to bind by) is a problem, named ``#i``; so is a keyword repeating a bound positional.
    """
    arguments, problems = {}, []
    names = tool.parameter_names if tool is not None else []
    for index, value in enumerate(call.positional):
        if index < len(names):
            arguments[names[index]] = value
        else:
            problems.append(f"#{index}")
    for key, value in call.arguments.items():
        if key in arguments:
            problems.append(key)
        arguments[key] = value
    return arguments, problems


def read_gold(answer: Any) -> list[GoldCall]:
    """Gold calls from BFCL's ground truth or chat tool_calls (see the module's docstring)."""
    if isinstance(answer, str):
        try:
            answer = json.loads(answer)
        except json.JSONDecodeError as exc:
            raise GoldError(f"a gold answer given as text must be JSON ({exc.msg})") from exc
    if isinstance(answer, dict):
        answer = [answer]
    if not isinstance(answer, list):
        raise GoldError("expected a list of gold calls (BFCL's ground_truth or chat tool_calls)")
    return [_gold_call(entry) for entry in answer]


def keyword_calls(calls: list[ToolCall], tools: list[Tool]) -> list[ToolCall]:
    """The calls with positional arguments bound to the documented parameters (`bind`), as keywords.

    Raises `GoldError` for an argument that binds to no documented parameter."""
    documented = {tool.name: tool for tool in tools}
    out = []
    for call in calls:
        arguments, unbound = bind(call, documented.get(call.name))
        if unbound:
            raise GoldError(f"call {call.name}: argument(s) {', '.join(unbound)} bind to no documented parameter")
        out.append(ToolCall(call.name, arguments))
    return out


def gold_of_calls(calls: list[ToolCall], tools: list[Tool]) -> list[dict[str, dict[str, list[Any]]]]:
    """BFCL's ground-truth form of exact calls (each argument's one accepted value), positional ones bound."""
    return [{call.name: {k: [exact_accepted(v)] for k, v in call.arguments.items()}}
            for call in keyword_calls(calls, tools)]  # fmt: skip


def chat_call(entry: Any) -> ToolCall | None:
    """A chat tool call (``{"type": "function", "function": {...}}`` or ``{"name", "arguments"}``), else None."""
    if not isinstance(entry, dict):
        return None
    body = entry["function"] if isinstance(entry.get("function"), dict) else entry
    name, arguments = body.get("name"), body.get("arguments", body.get("parameters"))
    if not isinstance(name, str) or not ({"name", "arguments"} <= set(body) or {"name", "parameters"} <= set(body)):
        return None
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError:
            return None
    if arguments is None:
        arguments = {}
    return ToolCall(name, arguments) if isinstance(arguments, dict) else None


def _gold_call(entry: Any) -> GoldCall:
    call = chat_call(entry)
    if call is not None:
        return GoldCall(call.name, {k: [exact_accepted(v)] for k, v in call.arguments.items()})
    if not (isinstance(entry, dict) and len(entry) == 1):
        raise GoldError("each gold call must be {name: {argument: [accepted values]}} or a chat tool call")
    ((name, arguments),) = entry.items()
    if not isinstance(arguments, dict) or not all(isinstance(v, list) for v in arguments.values()):
        raise GoldError(f"gold call {name!r}: expected {{argument: [accepted values]}}")
    return GoldCall(name, {k: list(v) for k, v in arguments.items()})
