"""What a verifier returns, and the shape every verifier has."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Verdict:
    """``correct`` is True/False, or None when the item cannot be judged (e.g. it has no gold answer)."""

    correct: bool | None
    reason: str


# (response_text, item) -> Verdict. ``item`` is the instruction's row: ``answer`` (gold), ``tests``, ...
Verifier = Callable[[str, dict[str, Any]], Verdict]
