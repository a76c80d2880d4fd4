"""The settings of iTool's two search-side steps, `grape itool deficiency` and `grape itool mcts` (torch-free).

Both read tool-calling rows (`grape tools prepare`); a model, template or end marker left None is taken from the
rows' sidecar (``score_settings``: the model and template the rows were prepared for), as `grape sft` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from grape.errors import GrapeError
from grape.search.steps import FRAGMENTS_PER_STEP, SEPARATORS

JUDGES = ("tool-call", "irm", "self-eval")
PAIR_LEVELS = ("step", "answer")
PAIR_RULES = ("pairs", "min_gap", "min_chosen", "max_overlap")  # what is read from a searched tree, not searched
T = TypeVar("T")


@dataclass
class DeficiencySettings:
    model: str | None = None  # the model whose fit is measured (None: the rows' sidecar model)
    template: str | None = None  # None: the rows' sidecar template, else chat if the model has one, else paper
    eos: bool | None = None  # the end marker counts as a token of the gold answer (None: the sidecar's, else yes)
    fraction: float = 0.3  # the share of each group (calls / no call) kept: those the model fits worst
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False


@dataclass
class MCTSSettings:
    model: str | None = None  # the policy that samples the steps (None: the rows' sidecar model)
    template: str | None = None  # how a row's prompt is rendered (None: as for DeficiencySettings)
    simulations: int = 5  # per question
    samples: int = 3  # continuations sampled per expansion
    max_new_tokens: int = 50  # per sampled continuation (expansions and rollouts)
    temperature: float = 1.5
    max_depth: int = 3  # levels of steps below the question
    separators: list[str] = field(default_factory=lambda: list(SEPARATORS))  # a fragment ends after each
    fragments_per_step: int = FRAGMENTS_PER_STEP
    exploration: float = 1.0  # w in UCB = V/(N+1) + w·P·sqrt(ln N_parent / (N+1))
    judge: str = "tool-call"  # the terminal reward: tool-call (+1/-1) | irm (TL-Training's graded) | self-eval
    pairs: str = "step"  # step (iTool) | answer (whole answers: the paper's ablation)
    min_gap: float = 0.1  # a pair is kept when V_chosen - V_rejected is at least this,
    min_chosen: float = -0.3  # V_chosen at least this,
    max_overlap: float = 0.95  # and the two texts' word overlap at most this
    seed: int = 0
    trees: str | None = None  # the searched trees to reuse and add to (None: <output>.trees.jsonl; trees_file.py)
    questions_at_once: int = 4  # searches under way together, their continuations sampled as one batch
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False


def with_row_defaults(settings: T, meta: dict[str, Any]) -> T:
    """``settings`` with model, template (and eos) left None taken from the rows' sidecar ``score_settings``."""
    scored = meta.get("score_settings") or {}
    filled = {key: scored[key] for key in ("model", "template", "eos")
              if hasattr(settings, key) and getattr(settings, key) is None and scored.get(key) is not None}  # fmt: skip
    return replace(settings, **filled)


def check_deficiency(settings: DeficiencySettings) -> None:
    if not 0 < settings.fraction <= 1:
        raise GrapeError(f"fraction {settings.fraction}: keep a share of each group in (0, 1]")


def check_mcts(settings: MCTSSettings) -> None:
    if settings.judge not in JUDGES:
        raise GrapeError(f"judge {settings.judge!r}: use one of {', '.join(JUDGES)}")
    if settings.pairs not in PAIR_LEVELS:
        raise GrapeError(f"pairs {settings.pairs!r}: use step or answer")
    for name in ("simulations", "samples", "max_new_tokens", "max_depth", "fragments_per_step", "questions_at_once"):
        if getattr(settings, name) < 1:
            raise GrapeError(f"{name} must be at least 1")
    if settings.temperature <= 0:
        raise GrapeError("temperature must be positive (the search samples)")
    if any(not s for s in settings.separators):
        raise GrapeError("separators: an empty separator cuts nothing")
