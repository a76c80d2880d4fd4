"""The `exact` and `regex:PATTERN` verifiers."""

from __future__ import annotations

import re
from typing import Any

from grape.errors import GrapeError
from grape.verification.verdict import Verdict, Verifier


def normalized(text: str) -> str:
    """Case-folded, whitespace collapsed, a trailing full stop dropped: what `exact` compares."""
    return " ".join(str(text).split()).casefold().rstrip(".").strip()


def verify_exact(response_text: str, item: dict[str, Any]) -> Verdict:
    """The whole response equals ``item["answer"]`` up to case, spacing and a final full stop."""
    gold = item.get("answer")
    if gold is None:
        return Verdict(None, "no gold answer")
    same = normalized(response_text or "") == normalized(gold)
    return Verdict(same, "exact match" if same else f"response is not {str(gold)[:60]!r}")


def regex_verifier(pattern: str) -> Verifier:
    """Correct when ``pattern`` is found in the response; with a group named ``answer``, that group must
    also equal the gold answer (compared like `exact`), e.g. ``regex:Final answer: (?P<answer>\\w+)``."""
    try:
        compiled = re.compile(pattern, re.MULTILINE)
    except re.error as exc:
        raise GrapeError(f"--verifier regex:{pattern}: invalid regular expression ({exc})") from exc
    compares = "answer" in compiled.groupindex

    def verify_regex(response_text: str, item: dict[str, Any]) -> Verdict:
        matches = list(compiled.finditer(response_text or ""))
        if not matches:
            return Verdict(False, f"no match: /{pattern}/")  # its kind, before the colon: "no match"
        if not compares:
            return Verdict(True, f"matched {matches[-1].group(0)[:60]!r}")
        gold = item.get("answer")
        if gold is None:
            return Verdict(None, "no gold answer")
        found = matches[-1].group("answer") or ""
        same = normalized(found) == normalized(gold)
        return Verdict(same, f"{found[:40]!r} {'==' if same else '!='} gold {str(gold)[:40]!r}")

    return verify_regex
