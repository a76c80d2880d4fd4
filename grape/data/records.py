"""The records that flow along the data path: instructions with their candidate responses.

A row that could not be read at all still becomes an `Instruction` (with no candidates and a
`skip_reason`), so that every input row is accounted for in every output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, str]]

SCORED = "scored"


def skipped(reason: str) -> str:
    """The status of a candidate that was not scored, e.g. ``skipped:empty_response``."""
    return f"skipped:{reason}"


@dataclass
class Candidate:
    text: str | None
    source: str | None
    skip_reason: str | None = None  # set when the candidate itself is bad (empty, too long, ...)
    row: int | None = None  # its own input row in the long layout
    extra: dict[str, Any] = field(default_factory=dict)  # carried through (e.g. `correct`)
    skip_field: str | None = None  # the input field that ``skip_reason`` is about, where one is
    given: Any = None  # the candidate as given when its text or source has the wrong type (kept, never nulled)


@dataclass
class Instruction:
    id: str | None
    prompt: str | Messages | None
    candidates: list[Candidate]
    answer: Any = None
    file: str = ""
    row: int = 0  # 1-based line (JSONL) or row (Parquet, datasets) of the first input row
    skip_reason: str | None = None  # set when the whole instruction is bad
    skip_field: str | None = None  # the input field that ``skip_reason`` is about, where one is

    @property
    def prompt_text(self) -> str | None:
        return self.prompt if isinstance(self.prompt, str) else None

    @property
    def messages(self) -> Messages | None:
        return self.prompt if isinstance(self.prompt, list) else None
