"""iTool's two rewards: a fast one for every new step, and a terminal one for a whole answer.

**Fast reward** (a step's starting value, as the official code's ``get_reward(fast_reward=True)``): agreement
with the gold call, ``±0.1 + (overlap - 0.5)``. The ±0.1 says whether the partial answer agrees with the gold
on calling at all (a ``(`` written where the gold has calls, none where no call is right). The overlap is the
official ratio |A ∩ B| / min(|A|, |B|) between the step's words and the gold's words: the tool names, argument
names and every accepted value of BFCL's key (so any accepted spelling agrees), words being runs of letters,
digits and ``_``, lower-cased (BFCL compares strings without case). A step without a word (``')``) has no
overlap term. The official code splits at spaces, under which ``get_weather(city=`` is one word that no gold
text contains; calls need the finer words.

**Terminal reward** of a whole answer, by the judge named in the settings: ``tool-call`` (the verifier: +1
right, -1 wrong), ``irm`` (TL-Training's graded error-category reward from the same judgement, +1 to -2), or
``self-eval`` (the model's own A/B/C/D grade, grape.search.self_eval).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from grape.tools.verifier import irm_reward_of_text, judge

AGREE = 0.1  # the official code's reward for agreeing with the gold on calling at all (-0.1 otherwise)
Judge = Callable[[str, dict[str, Any]], float]  # (whole answer text, data row) -> terminal reward
_WORD = re.compile(r"\w+")


def words(text: str) -> set[str]:
    """The lower-cased runs of letters, digits and ``_`` in ``text``."""
    return {w.lower() for w in _WORD.findall(text)}


def gold_words(answer: Any) -> set[str]:
    """Every word of a gold answer in BFCL's form: tool names, argument names, accepted values."""
    found: set[str] = set()
    for text in _texts(answer):
        found |= words(text)
    return found


def overlap(a: set[str], b: set[str]) -> float | None:
    """The official overlap ratio |a ∩ b| / min(|a|, |b|); None when either set is empty."""
    if not a or not b:
        return None
    return len(a & b) / min(len(a), len(b))


def text_overlap(a: str, b: str) -> float:
    """The overlap of two texts' words; texts without words overlap fully when equal, not at all otherwise."""
    ratio = overlap(words(a), words(b))
    if ratio is None:
        return 1.0 if a.strip() == b.strip() else 0.0
    return ratio


def fast_reward(step: str, partial: str, answer: list[Any], gold: set[str]) -> float:
    """The fast reward of a new ``step`` ending the partial answer ``partial`` (the step included), against
    the gold ``answer`` (BFCL's form; [] = no call is right) whose words are ``gold``."""
    agrees = ("(" in partial) == bool(answer)
    reward = AGREE if agrees else -AGREE
    ratio = overlap(words(step), gold)
    return reward + (ratio - 0.5 if ratio is not None else 0.0)


def verifier_reward(answer_text: str, row: dict[str, Any]) -> float:
    """+1 when the `tool-call` verifier judges the answer right, -1 when wrong, 0 when nothing can judge it."""
    verdict = judge(answer_text, row).correct
    return 0.0 if verdict is None else 1.0 if verdict else -1.0


def irm_reward(answer_text: str, row: dict[str, Any]) -> float:
    """TL-Training's error-category reward of the answer (grape.tools.irm)."""
    return irm_reward_of_text(answer_text, row)[0]


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _texts(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _texts(item)
    elif value is not None:
        yield str(value)
