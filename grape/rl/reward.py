"""ReFT's reward from any grape verifier: 1 right, 0.1 answered but wrong, 0 nothing to judge.

The partial reward separates "the model produced an answer (or its program ran)" from "it produced nothing
usable", which gives a weak warm-up model a gradient towards well-formed answers before right ones. What
counts as "no answer" is read from the verdict: ``correct is None`` (the verifier could not judge: no gold,
an answer math-verify could not finish comparing), or ``correct is False`` with one of the reasons the
verifiers give when they extracted nothing (no final answer, no code, no regex match) or when a program ran
out of time (ReFT: a timeout is 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from grape.verification.registry import get_verifier

# The reasons grape's verifiers give for False when nothing could be extracted (see grape/verification/*).
NO_ANSWER_REASONS = (
    "no final answer found",  # math, number
    "no code in the response",  # code
    "no match: /",  # regex:PATTERN
    "timeout:",  # code: the program ran past its time limit
)


@dataclass(frozen=True)
class Reward:
    value: float
    kind: str  # right | wrong | no_answer
    reason: str  # the verifier's


def reft_reward(verdict_correct: bool | None, reason: str, partial: float = 0.1) -> Reward:
    """The reward of one verdict (its ``correct`` and ``reason``)."""
    if verdict_correct is True:
        return Reward(1.0, "right", reason)
    if verdict_correct is None or reason.startswith(NO_ANSWER_REASONS):
        return Reward(0.0, "no_answer", reason)
    return Reward(partial, "wrong", reason)


def reward_function(verifier: str, partial: float = 0.1, **options: Any) -> Callable[[str, dict[str, Any]], Reward]:
    """``(response_text, item) -> Reward`` for a verifier name (``math``, ``number``, ``code``, ``python:...``).

    ``tool-call`` rewards by TL-Training's error categories (IRM: +1 exact down to -2 unparsable; ``partial``
    unused), from grape.tools (docs/tools.md)."""
    if verifier == "tool-call":
        from grape.tools.verifier import irm_reward_of_text

        return lambda response_text, item: Reward(*irm_reward_of_text(response_text, item))
    check = get_verifier(verifier, **options)

    def reward(response_text: str, item: dict[str, Any]) -> Reward:
        if not response_text.strip():
            return Reward(0.0, "no_answer", "empty response")
        verdict = check(response_text, item)
        return reft_reward(verdict.correct, verdict.reason, partial)

    return reward
