"""A training or evaluation sample of tool use: the context, the tools, the gold calls and the target turn."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grape.tools.calls import ToolCall
from grape.tools.tool_docs import Tool


@dataclass
class Sample:
    id: str
    context: list[dict[str, Any]]  # chat messages before the target turn (tool_calls and tool outputs kept)
    tools: list[Tool]
    gold: list[dict[str, Any]] | None  # BFCL's ground-truth form; [] = no call is right; None = no answer key
    target: str | list[ToolCall] | None  # the target turn: calls, a text, or None (the data has no text for it)
