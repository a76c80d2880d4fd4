"""The settings of `grape select` and `grape pairs` (torch-free: `grape --help` and pipeline checks stay fast)."""

from __future__ import annotations

from dataclasses import dataclass

from grape.errors import GrapeError
from grape.selection.strategies import get_strategy

FORMATS = ("prompt-completion", "messages")


@dataclass
class SelectSettings:
    strategy: str = "grape"  # grape | lowest | random | longest | shortest | all | source:NAME
    top_k: int | None = 1  # candidates kept per instruction; None: all eligible
    format: str = "prompt-completion"  # TRL's dataset format: prompt-completion | messages
    require_correct: bool = False  # keep only candidates a verifier judged correct
    seed: int = 0  # seed of the random strategy


CHOSEN = ("grape", "random")  # or source:NAME, priority:A,B,C
CHOSEN_FROM = ("correct", "all")
REJECTED = ("lowest", "random")
REJECTED_FROM = ("incorrect", "rest")


@dataclass
class PairsSettings:
    """`grape pairs`: one chosen/rejected pair per instruction (docs/preference.md)."""

    chosen: str = "grape"  # grape (best fit) | random | source:NAME | priority:A,B,C
    chosen_from: str | None = None  # correct | all; None: correct when the table has `correct` values, else all
    rejected: str = "lowest"  # lowest (worst fit) | random
    rejected_from: str | None = None  # incorrect | rest; None: incorrect when verified, else rest
    min_margin: float | None = None  # keep a pair only if chosen fit - rejected fit >= this
    seed: int = 0  # seed of the random draws


def check_pairs(settings: PairsSettings) -> None:
    """Raise a one-line GrapeError for a value `grape pairs` cannot run with (torch-free: pipelines check early)."""
    chosen = settings.chosen
    if chosen not in CHOSEN and not chosen.startswith(("source:", "priority:")):
        raise GrapeError(f"--chosen {chosen!r}: use one of {', '.join(CHOSEN)}, source:NAME or priority:A,B,C")
    try:
        get_strategy(chosen)
    except GrapeError as exc:
        raise GrapeError(f"--chosen: {exc}") from None
    for flag, value, choices in [("--chosen-from", settings.chosen_from, CHOSEN_FROM),
                                 ("--rejected", settings.rejected, REJECTED),
                                 ("--rejected-from", settings.rejected_from, REJECTED_FROM)]:  # fmt: skip
        if value is not None and value not in choices:
            raise GrapeError(f"{flag} {value!r}: use one of {', '.join(choices)}")
