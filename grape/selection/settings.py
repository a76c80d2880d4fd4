"""The settings of `grape select` (torch-free, so that `grape --help` and pipeline checks stay fast)."""

from __future__ import annotations

from dataclasses import dataclass

FORMATS = ("prompt-completion", "messages")


@dataclass
class SelectSettings:
    strategy: str = "grape"  # grape | lowest | random | longest | shortest | all | source:NAME
    top_k: int | None = 1  # candidates kept per instruction; None: all eligible
    format: str = "prompt-completion"  # TRL's dataset format: prompt-completion | messages
    require_correct: bool = False  # keep only candidates a verifier judged correct
    seed: int = 0  # seed of the random strategy
