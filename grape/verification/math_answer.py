"""The `math` verifier: extract the final answer from a worked solution and compare it numerically.

Where the final answer is looked for, most explicit first: GSM8K's ``#### n``, the last ``\\boxed{...}``,
the last "the answer is ..." / "Answer: ..." / "A: ...", and else the last number in the text.
Numbers compare exactly as fractions, so ``1,000``, ``$1000.00``, ``1000 dollars`` and ``2000/2`` agree.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from fractions import Fraction
from typing import Any

from grape.verification.verdict import Verdict

# A number: thousands groups (1,234,567) or plain digits, an optional decimal part, an optional /denominator.
_NUMBER = re.compile(
    r"(?<![\w.])(-|−)?\$?\s*(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)(?:\s*/\s*(\d+(?:\.\d+)?))?"
)
_LATEX_FRACTION = re.compile(r"\\[dt]?frac\s*\{\s*(-?[\d.,]+)\s*\}\s*\{\s*(-?[\d.,]+)\s*\}")
_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: 2*3=<<2*3=6>>6
_GSM8K = re.compile(r"####\s*([^\n]*)")
_STATED = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*(?:is)?\s*:?|answer\s*:|(?:^|\n)\s*A\s*:)\s*([^\n]*)",
    re.IGNORECASE,
)


def verify_math(response_text: str, item: dict[str, Any]) -> Verdict:
    """Compare the response's final answer with ``item["answer"]`` (a number, or a GSM8K-style solution)."""
    gold_value = item.get("answer")
    if gold_value is None or (isinstance(gold_value, str) and not gold_value.strip()):
        return Verdict(None, "no gold answer")
    gold, _ = final_answer(str(gold_value))
    if gold is None:
        return Verdict(None, f"cannot read a number from the gold answer {str(gold_value)[-40:]!r}")
    found, where = final_answer(response_text or "")
    if found is None:
        return Verdict(False, "no final answer found")
    if numbers_equal(found, gold):
        return Verdict(True, f"right answer: {_show(found)} ({where}) == gold {_show(gold)}")
    return Verdict(False, f"wrong answer: {_show(found)} ({where}) != gold {_show(gold)}")


def final_answer(text: str) -> tuple[Fraction | None, str]:
    """(the final answer as a number, where it was found) or (None, "") when the text has no number."""
    text = _CALCULATOR.sub("", text)
    for where, pattern in (("####", _GSM8K), ("stated", _STATED)):
        matches = pattern.findall(text)
        if matches:
            value = first_number(matches[-1])
            if value is not None:
                return value, where
    boxed = last_boxed(text)
    if boxed is not None:
        value = first_number(boxed)
        if value is not None:
            return value, "boxed"
    numbers = _numbers(text)
    return (numbers[-1], "last number") if numbers else (None, "")


def first_number(text: str) -> Fraction | None:
    """The first number in ``text`` (a \\boxed{} inside it wins; in ``12 * 7 = 84`` the result), or None."""
    boxed = last_boxed(text)
    if boxed is not None and boxed != text:
        text = boxed
    clause = re.split(r"\.(?:\s|$)|;", text, maxsplit=1)[0]  # "The answer is 12 * 7 = 84. So ..."
    if "=" in clause:
        text = clause.rsplit("=", 1)[1]
    numbers = _numbers(text)
    return numbers[0] if numbers else None


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{...}`` (or ``\\fbox{...}``), braces balanced; None if there is none."""
    start = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if start < 0:
        return None
    brace = text.find("{", start)
    if brace < 0:
        return None
    depth = 0
    for i in range(brace, len(text)):
        depth += {"{": 1, "}": -1}.get(text[i], 0)
        if depth == 0:
            return text[brace + 1 : i]
    return None


def numbers_equal(a: Fraction, b: Fraction) -> bool:
    """Exact for integers and fractions; a relative 1e-6 for decimals that were rounded (0.333 vs 1/3 fails)."""
    return a == b or abs(a - b) <= Fraction(1, 10**6) * max(abs(a), abs(b))


def _numbers(text: str) -> list[Fraction]:
    text = _LATEX_FRACTION.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
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


def _to_fraction(token: str) -> Fraction | None:
    try:
        return Fraction(Decimal(token.replace(",", "")))
    except (InvalidOperation, ValueError, ZeroDivisionError):
        return None


def _show(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{float(value):g}"
