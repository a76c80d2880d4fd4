"""The `math` verifier: Hugging Face's math-verify compares the final answer with the gold, as expressions.

``\\boxed{2x+1}`` equals gold ``2x+1``, ``\\boxed{\\dfrac12}`` equals ``0.5``, ``{2, 1}`` equals ``\\{1,2\\}``,
``50\\%`` equals ``0.5``; ``2`` is not ``\\sqrt{2}``. Which part of a text is the answer (the same rule for the
gold and the response):

1. a ``\\boxed{}`` anywhere: math-verify reads the text, boxed answers first (several boxed answers form a set);
2. else an explicit final answer: GSM8K's ``#### n``, else the last "the answer is ..." / "Answer: ..." /
   "A: ..." (its first sentence). It is read as one LaTeX expression when it has no words in it
   (``2x+1``, ``(1, 2]``, ``\\frac{\\pi}{2}``), and else math-verify finds the expression in it
   (``18 dollars``, ``$1,000.50``, ``5 * 24 = 120``);
3. else the whole text, by the same rule as 2 (a bare gold such as ``2x+1`` is its own answer; in a
   response math-verify takes the last expression).

Each check runs in a worker process (math_verify_pool) and is bounded in wall time: past ``timeout_s``
the verdict is unknown (None), never a hang. Needs ``pip install 'math-verify[antlr4_13_2]'``.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Any

from grape.errors import GrapeError
from grape.verification.answer_text import CALCULATOR, first_sentence, last_boxed, stated_answers
from grape.verification.math_verify_pool import MathVerifyPool
from grape.verification.verdict import Verdict

_MATH_ENVIRONMENT = re.compile(r"(?<!\\)\$[^$]+(?<!\\)\$|\\\(|\\\[")
_CURRENCY = re.compile(r"\\?\$(?=\s*[-−]?\s*[\d.])")  # $18, \$1,000.50: a price, not a LaTeX delimiter
_TEXT_ARGUMENT = re.compile(r"\\(?:text|textrm|textbf|mathrm|mbox|operatorname)\s*\{[^{}]*\}")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_WORD = re.compile(r"[A-Za-z]{2,}")
_INTEGRAL_DECIMAL = re.compile(r"([-−]?\d+)\.0+")  # 6.0 is read as 6, so that 6% == 6.0 as 6% == 6
_WRAPPERS = (("<", ">"), ("**", "**"), ("`", "`"), ('"', '"'))  # "the answer is <203>" (ReFT), **203** (markdown)


@dataclass(frozen=True)
class Answer:
    """The part of a text that holds its final answer, and how math-verify should read it."""

    mode: str  # latex: one LaTeX expression; text: math-verify finds the answer in it
    text: str
    where: str  # boxed | #### | stated | whole text


def answer_of(text: str) -> Answer:
    """Where the final answer of ``text`` (a response or a gold answer) is, by the rule in the module doc."""
    text = CALCULATOR.sub("", text).strip()
    if last_boxed(text) is not None:
        return Answer("text", text, "boxed")
    stated = stated_answers(text)
    if stated:
        clause, where = stated[0]
        return _expression(first_sentence(clause), where)
    return _expression(text, "whole text")


def _expression(text: str, where: str) -> Answer:
    if _MATH_ENVIRONMENT.search(text):
        return Answer("text", text, where)
    text = _CURRENCY.sub("", text).rstrip(".").strip()
    for opening, closing in _WRAPPERS:
        if len(text) > len(opening) + len(closing) and text.startswith(opening) and text.endswith(closing):
            text = text[len(opening) : -len(closing)].strip()
    text = _INTEGRAL_DECIMAL.sub(r"\1", text) if _INTEGRAL_DECIMAL.fullmatch(text) else text
    bare = _COMMAND.sub(" ", _TEXT_ARGUMENT.sub(" ", text))  # units in \text{} and commands are not words
    return Answer("text" if _WORD.search(bare) else "latex", text, where)


class MathVerifier:
    """``(response_text, item) -> Verdict`` against ``item["answer"]``; see the module doc. Thread-safe.

    Its worker processes start at the first check and stop at ``close()``, when the verifier is garbage
    collected, or at interpreter exit. Picklable (a copy starts workers of its own).
    """

    __name__ = "math"

    def __init__(self, timeout_s: float = 10.0) -> None:
        if importlib.util.find_spec("math_verify") is None:
            raise GrapeError("verifier 'math' needs math-verify: pip install 'math-verify[antlr4_13_2]'")
        self.timeout_s = timeout_s
        self._pool = MathVerifyPool(timeout_s)

    def __call__(self, response_text: str, item: dict[str, Any]) -> Verdict:
        gold_value = item.get("answer")
        if gold_value is None or (isinstance(gold_value, str) and not gold_value.strip()):
            return Verdict(None, "no gold answer")
        gold, found = answer_of(str(gold_value)), answer_of(response_text or "")
        result = self._pool.check({"gold": [gold.mode, gold.text], "response": [found.mode, found.text]})
        if result.get("timed_out"):
            return Verdict(None, f"math-verify took over {self.timeout_s:g}s: answer {_clip(found.text)} "
                                 f"({found.where}), gold {_clip(gold.text)}")  # fmt: skip
        if "error" in result:
            return Verdict(None, f"math-verify failed: {result['error']}")
        if result["gold"] is None:
            return Verdict(None, f"cannot read the gold answer {_clip(str(gold_value))}")
        if result["found"] is None:
            return Verdict(False, "no final answer found")
        answer, gold_answer = _shown(found, result["found"]), _shown(gold, result["gold"])
        if result["correct"]:
            return Verdict(True, f"right answer: {answer} ({found.where}) == gold {gold_answer}")
        return Verdict(False, f"wrong answer: {answer} ({found.where}) != gold {gold_answer}")

    def close(self) -> None:
        """Stop the worker processes (a later check starts new ones)."""
        self._pool.close()

    def __getstate__(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["timeout_s"])


def _shown(answer: Answer, extracted: str) -> str:
    # What was compared: the expression as written, or what math-verify found in a text.
    return _clip(answer.text, quote=False) if answer.mode == "latex" else extracted


def _clip(text: str, length: int = 40, quote: bool = True) -> str:
    text = text if len(text) <= length else "…" + text[-length:]
    return repr(text) if quote else text
