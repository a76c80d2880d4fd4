"""TL-Training's clean turns (MAE): one sample per assistant turn, never a target that led to a tool error.

A multi-turn trajectory becomes one sample per assistant turn (its context: everything before it). A turn
whose tool output (the ``tool``/``function`` messages right after it) matches an error signature is never
a target, because it taught the model a call that failed; it stays in the context of later turns, which
learn to recover from it. Matching ignores case and everything but letters and digits (the official code
keeps a-z, 0-9 and CJK characters), so ``'"error":'`` matches any output that says "error" anywhere, as in
the paper's code (TL-Training, code/mae/mae.py); pass your own list to be stricter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from grape.tools.calls import gold_of_calls, keyword_calls
from grape.tools.parse import parse_calls
from grape.tools.render import assistant_calls, message_text
from grape.tools.samples import Sample
from grape.tools.tool_docs import Tool

# The paper's list (code/mae/mae.py, `error_calling`).
PAPER_ERROR_SIGNATURES = (
    "is not defined", "positional argument", "unexpected keyword", "'related_searches'", "ConnectionError",
    '"error":', "not supported", "Invalid API call", "Response error",
    "Object of type SerpResults is not JSON serializable", "400 Client Error", "'error'",
    "slice indices must be integers or None or have an __index__ method", "connection error",
)  # fmt: skip
TOOL_ROLES = ("tool", "function", "ipython")
_NOT_KEPT = re.compile(r"[^0-9a-z\u4e00-\u9fa5]")


@dataclass(frozen=True)
class ExcludedTurn:
    id: str
    signature: str  # the error signature its tool output matched


def signature_key(text: str) -> str:
    """What error matching compares: lower case, only a-z, 0-9 and CJK characters kept."""
    return _NOT_KEPT.sub("", text.lower())


def matched_signature(output: str, signatures: tuple[str, ...] | list[str]) -> str | None:
    """The first signature found in a tool output (case and punctuation ignored), or None."""
    key = signature_key(output)
    return next((s for s in signatures if signature_key(s) and signature_key(s) in key), None)


def split_turns(
    ident: str, messages: list[dict[str, Any]], tools: list[Tool], signatures: tuple[str, ...] | list[str]
) -> tuple[list[Sample], list[ExcludedTurn]]:
    """One `Sample` per clean assistant turn of a trajectory (ids ``<ident>/turn<k>``, k counting every
    assistant turn), and the turns left out with the signature that excluded them."""
    samples, excluded, number = [], [], 0
    for index, message in enumerate(messages):
        if message.get("role") != "assistant":
            continue
        number += 1
        turn_id = f"{ident}/turn{number}"
        hit = next(filter(None, (matched_signature(message_text(m), signatures) for m in _outputs(messages, index))),
                   None)  # fmt: skip
        if hit is not None:
            excluded.append(ExcludedTurn(turn_id, hit))
            continue
        samples.append(Sample(turn_id, messages[:index], tools, *_gold_and_target(message, tools)))
    return samples, excluded


def _outputs(messages: list[dict[str, Any]], index: int) -> list[dict[str, Any]]:
    """The tool outputs that answer the assistant turn at ``index``: the tool messages right after it."""
    outputs = []
    for message in messages[index + 1 :]:
        if message.get("role") not in TOOL_ROLES:
            break
        outputs.append(message)
    return outputs


def _gold_and_target(message: dict[str, Any], tools: list[Tool]) -> tuple[list[dict[str, Any]], Any]:
    """An assistant turn's gold (its calls exactly; [] for a text answer) and its target: its calls (positional
    arguments bound to keywords), its text as written, or None when it has neither.

    Raises `GoldError` for a call whose arguments bind to no documented parameter."""
    calls = assistant_calls(message)
    if calls:
        return gold_of_calls(calls, tools), keyword_calls(calls, tools)
    text = message_text(message)
    if not text.strip():
        return [], None
    parsed = parse_calls(text)
    return gold_of_calls(parsed.calls, tools) if parsed.error is None else [], text
