"""Tools and calls as prompt text: the model's chat template where it renders ``tools=``, else a plain one.

The plain template (TL-Training's format for models without tool support) puts each tool in the system
turn as a Python signature with its docstring, and writes calls as Python, one per line::

    def get_weather(city: string, unit: string = None):
        \"\"\"Get the current weather in a city.

        Args:
            city (string): The city's name.
            unit (string): celsius or fahrenheit. One of: celsius, fahrenheit. Default: celsius.
        \"\"\"

    get_weather(city='Paris')

Required parameters come first in a signature, as in Python; a positional argument binds in that order
(`Tool.parameter_names`). A conversation's own system message follows the tools. Earlier assistant calls
are written as call text, tool outputs stay ``tool`` messages.

With a chat template that renders ``tools=`` (detected by rendering a probe tool), the prompt is the
template's own text (tools, earlier ``tool_calls`` and ``tool`` messages included) and is trained with
``--template raw``; a call is written as the template writes an assistant ``tool_calls`` message, where it
does, else as Python.
"""

from __future__ import annotations

import json
from typing import Any

from grape.tools.calls import ToolCall, chat_call
from grape.tools.tool_docs import Tool

PLAIN_INTRO = "You can call these functions:"
PLAIN_RULES = (
    "To call functions, answer with the calls only, one per line, in Python syntax: name(argument=value). "
    "If no function fits the request, answer in plain text without a call."
)
_PROBE = "grape_probe_tool"


def call_text(calls: list[ToolCall]) -> str:
    """Calls as Python, one per line: ``get_weather(city='Paris')`` (values written by `repr`)."""
    lines = []
    for call in calls:
        arguments = [repr(v) for v in call.positional] + [f"{k}={v!r}" for k, v in call.arguments.items()]
        lines.append(f"{call.name}({', '.join(arguments)})")
    return "\n".join(lines)


def tool_signature(tool: Tool) -> str:
    """One tool as a Python signature and docstring (the plain template's system-turn entry)."""
    optional = set(tool.parameter_names) - set(tool.required)
    parameters = [f"{p}: {tool.type_of(p) or 'any'}" + (" = None" if p in optional else "")
                  for p in tool.parameter_names]  # fmt: skip
    lines = [f"def {tool.name}({', '.join(parameters)}):", '    """' + (tool.description.strip() or tool.name)]
    if tool.parameter_names:
        lines += ["", "    Args:"]
        for p in tool.parameter_names:
            lines.append(f"        {p} ({tool.type_of(p) or 'any'}): {_parameter_note(tool.properties[p])}".rstrip())
    lines.append('    """')
    return "\n".join(lines)


def plain_system_text(tools: list[Tool], system: str | None = None) -> str:
    """The plain template's system turn: the tools, how to call them, then the conversation's own system text."""
    parts = [PLAIN_INTRO, *(tool_signature(t) for t in tools), PLAIN_RULES]
    if system and system.strip():
        parts.append(system.strip())
    return "\n\n".join(parts)


def plain_messages(messages: list[dict[str, Any]], tools: list[Tool]) -> list[dict[str, str]]:
    """A conversation in the plain template: the tools in the system turn, assistant tool_calls as call text."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system" and m.get("content"))
    out = [{"role": "system", "content": plain_system_text(tools, system)}]
    for message in messages:
        if message["role"] == "system":
            continue
        out.append({"role": message["role"], "content": message_text(message)})
    return out


def message_text(message: dict[str, Any]) -> str:
    """A message's text: its content, or its ``tool_calls`` as call text; a non-text tool output as JSON."""
    calls = assistant_calls(message)
    if calls:
        return call_text(calls)
    content = message.get("content")
    if content is None:
        return ""
    return content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)


def assistant_calls(message: dict[str, Any]) -> list[ToolCall]:
    """The chat ``tool_calls`` of an assistant message (none for a text-only message)."""
    calls = [chat_call(entry) for entry in message.get("tool_calls") or []]
    return [c for c in calls if c is not None]


def chat_tool_message(call_list: list[ToolCall]) -> dict[str, Any]:
    """An assistant message carrying ``call_list`` as chat ``tool_calls``."""
    calls = [{"type": "function", "function": {"name": c.name, "arguments": dict(c.arguments)}} for c in call_list]
    return {"role": "assistant", "content": "", "tool_calls": calls}


def renders_tools(tokenizer: Any) -> bool:
    """Whether the tokenizer's chat template writes the ``tools=`` it is given (SmolLM2's ignores them;
    Gemma 3 270M base has no chat template at all)."""
    if not getattr(tokenizer, "chat_template", None):
        return False
    probe = Tool(_PROBE, "probe", {"x": {"type": "string", "description": "x"}}, ("x",))
    try:
        text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tools=[probe.as_chat()],
                                             tokenize=False, add_generation_prompt=True)  # fmt: skip
    except Exception:  # a template that refuses tools (or this conversation) does not render them
        return False
    return _PROBE in text


def chat_prompt_text(tokenizer: Any, messages: list[dict[str, Any]], tools: list[Tool]) -> str:
    """The chat template's generation prompt for ``messages`` with ``tools=`` (for a template that renders them)."""
    chat_tools = [t.as_chat() for t in tools]
    return tokenizer.apply_chat_template(messages, tools=chat_tools, tokenize=False, add_generation_prompt=True)


def chat_call_text(tokenizer: Any, calls: list[ToolCall], end_of_turn: str | None) -> str:
    """Calls as the chat template writes an assistant ``tool_calls`` turn (its end-of-turn marker left out);
    as Python where the template writes no tool calls."""
    user = [{"role": "user", "content": "Hi"}]
    prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
    try:
        full = tokenizer.apply_chat_template([*user, chat_tool_message(calls)], tokenize=False)
    except Exception:
        return call_text(calls)
    turn = full[len(prompt) :] if full.startswith(prompt) else ""
    if not calls or not all(c.name in turn for c in calls):
        return call_text(calls)
    turn = turn.rstrip()
    if end_of_turn and turn.endswith(end_of_turn):
        turn = turn[: -len(end_of_turn)].rstrip()
    return turn


def _parameter_note(entry: Any) -> str:
    if not isinstance(entry, dict):
        return ""
    note = str(entry.get("description") or "").strip()
    if isinstance(entry.get("enum"), list):
        note += f" One of: {', '.join(str(v) for v in entry['enum'])}."
    if "default" in entry:
        note += f" Default: {entry['default']}."
    return note.strip()
