"""The `number` verifier: read the final number of a worked solution and compare it exactly. Fast, no parser.

Where the final answer is looked for, most explicit first: GSM8K's ``#### n``, the last "the answer is ..." /
"Answer: ..." / "A: ...", the last ``\\boxed{...}``, and else the last number in the text (`number-stated`: no such
fallback, the answer must be stated). Numbers compare exactly as fractions, so ``1,000``, ``$1000.00``,
``1000 dollars`` and ``2000/2`` agree.

It judges only golds that are plain numbers (``18``, ``-2.5``, ``$1,000``, ``3/4``, ``\\frac{3}{4}``, ``50%``,
or a worked solution ending in one); any other gold (``\\sqrt{2}``, ``2x+1``, ``(1, 2]``) is ``unknown``:
digits read out of an expression prove nothing. The `math` verifier judges those.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from grape.verification.answer_text import CALCULATOR, first_sentence, last_boxed, stated_answers
from grape.verification.verdict import Verdict

# A number: thousands groups (1,234,567) or plain digits, an optional decimal part, an optional /denominator.
_NUMBER = re.compile(
    r"(?<![\w.])(-|−)?\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*(\d+(?:\.\d+)?))?"
)
# \frac{3}{4}, \dfrac{3}{4}, \tfrac34
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\s*(?:\{\s*(-?[\d.,]+)\s*\}|(\d))\s*(?:\{\s*(-?[\d.,]+)\s*\}|(\d))")
# The whole gold answer is one number: sign, currency, digits, a /denominator, a percent sign, a full stop.
_PLAIN_NUMBER = re.compile(
    r"\s*(?:-|−)?\s*(?:\\?\$)?\s*(?:(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+(?:\.\d+)?)?\s*\\?%?\s*\.?\s*"
)


def verify_stated_number(response_text: str, item: dict[str, Any]) -> Verdict:
    """`number-stated`: as `number`, but only an answer the response states (``#### n``, "the answer is ...",
    ``\\boxed{}``) counts, never its last number: ReFT's extraction, whose reward is 0 (not 0.1) when the
    response states nothing."""
    return verify_number(response_text, item, stated_only=True)


def verify_number(response_text: str, item: dict[str, Any], stated_only: bool = False) -> Verdict:
    """Compare the response's final number with ``item["answer"]`` (a number, or a solution ending in one).
    ``stated_only``: no fallback to the last number in the text."""
    gold_value = item.get("answer")
    if gold_value is None or (isinstance(gold_value, str) and not gold_value.strip()):
        return Verdict(None, "no gold answer")
    gold = gold_number(str(gold_value))
    if gold is None:
        return Verdict(None, f"the gold answer is not a plain number: {str(gold_value)[-40:]!r}")
    found, where = final_answer(response_text or "", stated_only)
    if found is None:
        return Verdict(False, "no final answer found")
    if numbers_equal(found, gold):
        return Verdict(True, f"right answer: {_show(found)} ({where}) == gold {_show(gold)}")
    return Verdict(False, f"wrong answer: {_show(found)} ({where}) != gold {_show(gold)}")


def gold_number(gold: str) -> Fraction | None:
    """The gold answer as a number when it is a plain one (or a solution's stated plain one), else None."""
    stated = stated_answers(gold)
    boxed = last_boxed(gold)
    answer = stated[0][0] if stated else boxed if boxed is not None else CALCULATOR.sub("", gold)
    answer = _LATEX_FRACTION.sub(_as_slash, answer)
    if not _PLAIN_NUMBER.fullmatch(answer):
        return None
    return first_number(answer)


def final_answer(text: str, stated_only: bool = False) -> tuple[Fraction | None, str]:
    """(the final answer as a number, where it was found) or (None, "") when the text has no number (with
    ``stated_only``: no stated or boxed one)."""
    for clause, where in stated_answers(text):
        value = first_number(clause)
        if value is not None:
            return value, where
    text = CALCULATOR.sub("", text)
    boxed = last_boxed(text)
    if boxed is not None:
        value = first_number(boxed)
        if value is not None:
            return value, "boxed"
    numbers = [] if stated_only else _numbers(text)
    return (numbers[-1], "last number") if numbers else (None, "")


def first_number(text: str) -> Fraction | None:
    """The first number in ``text`` (a \\boxed{} inside it wins; in ``12 * 7 = 84`` the result), or None."""
    boxed = last_boxed(text)
    if boxed is not None and boxed != text:
        text = boxed
    clause = first_sentence(text)  # "The answer is 12 * 7 = 84. So ..."
    if "=" in clause:
        text = clause.rsplit("=", 1)[1]
    numbers = _numbers(text)
    return numbers[0] if numbers else None


def numbers_equal(a: Fraction, b: Fraction) -> bool:
    """Exact for integers and fractions; a relative 1e-6 for decimals that were rounded (0.333 vs 1/3 fails)."""
    return a == b or abs(a - b) <= Fraction(1, 10**6) * max(abs(a), abs(b))


def _numbers(text: str) -> list[Fraction]:
    text = _LATEX_FRACTION.sub(_as_slash, text)
    out = []
    for sign, whole, denominator in _NUMBER.findall(text):
        value = _to_fraction(whole)
        if value is None:
            continue
        if denominator:
            below = _to_fraction(denominator)
            if below:
                value /= below
        out.append(-value if sign else value)
    return out


def _as_slash(match: re.Match[str]) -> str:
    numerator, digit, denominator, digit_below = match.groups()
    return f"{numerator or digit}/{denominator or digit_below}"


def _to_fraction(token: str) -> Fraction | None:
    try:
        return Fraction(Decimal(token.replace(",", "")))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
