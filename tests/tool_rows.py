"""Hand-made tool-calling conversations for the iTool tests (tests/search, tests/tools/test_itool_*): three
tools, one to three calls, and answers where no call is right."""

from __future__ import annotations


def _tool(name: str, description: str, required: dict, optional: dict | None = None) -> dict:
    properties = {k: {"type": t, "description": k} for k, t in {**required, **(optional or {})}.items()}
    return {"type": "function", "function": {"name": name, "description": description, "parameters": {
        "type": "object", "properties": properties, "required": list(required)}}}  # fmt: skip


WEATHER = _tool("get_weather", "The weather in a city.", {"city": "string"}, {"unit": "string"})
TIME = _tool("get_time", "The local time in a city.", {"city": "string"})
CONVERT = _tool("convert", "Convert an amount of money.", {"amount": "number", "source": "string", "target": "string"})


def _calls(*calls: tuple[str, dict]) -> dict:
    return {
        "role": "assistant",
        "content": "",
        "tool_calls": [
            {"type": "function", "function": {"name": name, "arguments": arguments}} for name, arguments in calls
        ],
    }


def _row(ident: str, tools: list[dict], question: str, answer: dict) -> dict:
    return {"id": ident, "tools": tools, "messages": [{"role": "user", "content": question}, answer]}


TRAJECTORIES = [
    _row("w1", [WEATHER, TIME, CONVERT], "Weather in Paris and the time in Rome, please.",
         _calls(("get_weather", {"city": "Paris"}), ("get_time", {"city": "Rome"}))),
    _row("w2", [WEATHER], "How warm is it in Oslo?", _calls(("get_weather", {"city": "Oslo"}))),
    _row("w3", [WEATHER, TIME], "What time is it in Lima?", _calls(("get_time", {"city": "Lima"}))),
    _row("w4", [WEATHER, TIME], "Tell me a joke.", {"role": "assistant", "content": "None of my tools tells jokes."}),
    _row("w5", [CONVERT], "Change 20 euros into dollars.",
         _calls(("convert", {"amount": 20, "source": "EUR", "target": "USD"}))),
    _row("w6", [WEATHER, TIME, CONVERT], "Weather in Kyoto in celsius.",
         _calls(("get_weather", {"city": "Kyoto", "unit": "celsius"}))),
    _row("w7", [TIME], "Who wrote Hamlet?", {"role": "assistant", "content": "I cannot look that up."}),
    _row("w8", [WEATHER, TIME], "Time in Cairo, Delhi and Quito?",
         _calls(("get_time", {"city": "Cairo"}), ("get_time", {"city": "Delhi"}), ("get_time", {"city": "Quito"}))),
]  # fmt: skip
