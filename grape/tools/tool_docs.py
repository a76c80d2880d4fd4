"""Tool documentation: one `Tool` from BFCL's function entries or from the chat ``tools=`` format.

BFCL writes ``{"name", "description", "parameters": {"type": "dict", "properties", "required"}}`` with its
own type names (``integer``, ``float``, ``tuple``, ``any``...); transformers' chat templates take
``{"type": "function", "function": {...the same...}}``. Both read into `Tool`, which keeps the schema as
given (the verifier checks values against BFCL's type names) and writes back the chat form.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ToolDocError(ValueError):
    """A tool entry that is not a tool (the caller names the file, row and field)."""


@dataclass(frozen=True)
class Tool:
    name: str
    description: str = ""
    properties: dict[str, Any] = field(default_factory=dict)  # parameter name -> its JSON-schema entry
    required: tuple[str, ...] = ()

    @property
    def parameter_names(self) -> list[str]:
        """The parameters as a signature lists them: the required ones first, each group in documented order
        (how a positional argument binds, as in Python)."""
        required = [p for p in self.required if p in self.properties]
        return required + [p for p in self.properties if p not in required]

    def type_of(self, parameter: str) -> str | None:
        """The parameter's schema type name (``string``, ``integer``, ``float``, ``array``...), or None."""
        entry = self.properties.get(parameter)
        return entry.get("type") if isinstance(entry, dict) else None

    def item_type_of(self, parameter: str) -> str | None:
        """The type of an array's items, or None."""
        entry = self.properties.get(parameter)
        items = entry.get("items") if isinstance(entry, dict) else None
        return items.get("type") if isinstance(items, dict) else None

    def as_chat(self) -> dict[str, Any]:
        """The chat ``tools=`` entry that transformers' templates render."""
        parameters = {"type": "object", "properties": self.properties, "required": list(self.required)}
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": parameters}}  # fmt: skip


def read_tool(entry: Any) -> Tool:
    """One tool from a BFCL function entry or a chat ``{"type": "function", "function": {...}}`` entry."""
    if isinstance(entry, dict) and isinstance(entry.get("function"), dict):
        entry = entry["function"]
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
        raise ToolDocError("expected a tool: {name, description, parameters}")
    parameters = entry.get("parameters") or {}
    if not isinstance(parameters, dict):
        raise ToolDocError(f"tool {entry['name']!r}: parameters must be a JSON-schema object")
    properties = parameters.get("properties") or {}
    required = parameters.get("required") or []
    if not isinstance(properties, dict) or not isinstance(required, list):
        raise ToolDocError(f"tool {entry['name']!r}: expected properties (an object) and required (a list)")
    description = entry.get("description")
    return Tool(entry["name"], description if isinstance(description, str) else "", properties, tuple(required))


def read_tools(entries: Any) -> list[Tool]:
    """A list of tools (None or a missing list is no tools)."""
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ToolDocError("expected a list of tools")
    return [read_tool(entry) for entry in entries]
