"""Where a worked solution states its final answer: GSM8K's ``#### n``, ``\\boxed{...}``, "the answer is ...".

Shared by the `number` verifier (which reads a number out of the answer) and the `math` verifier (which
hands the answer to math-verify). Pure text work, no parsing of the answer itself.
"""

from __future__ import annotations

import re

CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: 2*3=<<2*3=6>>6
_GSM8K = re.compile(r"####\s*([^\n]*)")
_STATED = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|final\s+answer\s*(?:is)?\s*:?|answer\s*:|(?:^|\n)\s*A\s*:)\s*([^\n]*)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"\.(?:\s|$)|;")


def stated_answers(text: str) -> list[tuple[str, str]]:
    """The explicit final answers of ``text``, most explicit first: [(the rest of the line, where)].

    ``where`` is ``####`` (GSM8K's last line) or ``stated`` ("the answer is", "Answer:", "A:"); of each
    kind only the last occurrence counts. Calculator annotations are removed first.
    """
    text = CALCULATOR.sub("", text)
    found = []
    for where, pattern in (("####", _GSM8K), ("stated", _STATED)):
        matches = pattern.findall(text)
        if matches and matches[-1].strip():
            found.append((matches[-1].strip(), where))
    return found


def first_sentence(text: str) -> str:
    """``text`` up to its first full stop or semicolon: "12 * 7 = 84. So she ..." -> "12 * 7 = 84"."""
    return _SENTENCE_END.split(text, maxsplit=1)[0].strip()


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
