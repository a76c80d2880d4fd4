"""The settings of `grape itool curriculum` (torch-free: `grape --help` and pipeline checks stay fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.errors import GrapeError

CRITERIA = ("calls", "tools", "arguments")


@dataclass
class CurriculumSettings:
    # the rows are sorted by these counts, the first deciding, the next breaking its ties (input order last):
    # calls (gold calls), tools (tools offered), arguments (required arguments of the gold calls)
    order: list[str] = field(default_factory=lambda: list(CRITERIA))


def check_curriculum(settings: CurriculumSettings) -> None:
    unknown = [c for c in settings.order if c not in CRITERIA]
    if unknown or not settings.order:
        raise GrapeError(f"order {settings.order!r}: give one or more of {', '.join(CRITERIA)}")
    if len(set(settings.order)) != len(settings.order):
        raise GrapeError(f"order {settings.order!r}: a criterion named twice")
