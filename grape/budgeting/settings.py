"""The settings of `grape budget` (torch-free, so that `grape --help` and pipeline checks stay fast).

The training and evaluation settings are the stages' own dataclasses, nested: ``sft:`` takes the keys of
``grape-sft.yaml``, ``dpo:`` those of ``grape-dpo.yaml``, ``eval:`` those of `grape eval`'s ``--config``. Per cell,
budget sets in them what the cell decides: the model each stage starts from, the template and end marker (one
for all three, so every stage sees the text that was scored), and the seed of SFT and DPO (the cell's seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.errors import GrapeError
from grape.evaluation.settings import EvalSettings
from grape.training.settings import DPOSettings, SFTSettings, check, check_dpo

DEFAULT_SHARES = (0.0, 0.05, 0.1, 0.25, 1.0)


@dataclass
class BudgetSettings:
    budget: int = 0  # units per cell: an SFT example costs 1, a pair pair_cost (required: at least 1)
    shares: list[float] = field(default_factory=lambda: list(DEFAULT_SHARES))  # SFT shares f, one cell each
    pair_cost: float = 1.0  # units one preference pair costs
    seeds: list[int] = field(default_factory=lambda: [0])  # one cell per share and seed: the draw and training seed
    # None: as the SFT pool was scored (its sidecar's score_settings), else DEFAULT_TARGET, paper, True
    model: str | None = None  # the base model every cell starts from
    template: str | None = None
    eos: bool | None = None
    sft: SFTSettings = field(default_factory=SFTSettings)
    dpo: DPOSettings = field(default_factory=DPOSettings)
    eval: EvalSettings = field(default_factory=EvalSettings)
    # False: once a cell is done, delete its models' weights and checkpoints (a 270M model is ~1 GB in fp32, and
    # a cell may hold two); its settings, metrics, model cards and eval outputs stay
    keep_models: bool = True


# The fields of the nested settings that budget sets per cell; a value given there would be silently replaced.
SET_PER_CELL = {"sft": ("model", "template", "eos"), "dpo": ("model", "template", "eos")}


def check_budget(settings: BudgetSettings) -> None:
    """Reject settings no cell can run with, before any pool is read."""
    if settings.budget < 1:
        raise GrapeError("budget must be at least 1 (the units each cell spends; --budget N)")
    if settings.pair_cost <= 0:
        raise GrapeError(f"pair_cost must be positive, got {settings.pair_cost:g}")
    if not settings.shares:
        raise GrapeError("shares is empty: give at least one SFT share, e.g. --shares 0,0.1,1")
    for share in settings.shares:
        if not 0 <= share <= 1:
            raise GrapeError(f"shares: {share:g} is not in [0, 1]")
    if len(set(settings.shares)) < len(settings.shares):
        raise GrapeError(f"shares: {settings.shares} lists a share twice")
    if not settings.seeds:
        raise GrapeError("seeds is empty: give at least one, e.g. --seeds 0")
    if len(set(settings.seeds)) < len(settings.seeds):
        raise GrapeError(f"seeds: {settings.seeds} lists a seed twice")
    for section, names in SET_PER_CELL.items():
        for name in names:
            if getattr(getattr(settings, section), name) is not None:
                raise GrapeError(f"{section}.{name}: budget sets it for every cell; give `{name}` at the top level")
    for section in ("sft", "dpo"):
        if getattr(settings, section).save == "adapter":
            raise GrapeError(f"{section}.save adapter: budget trains on from and evaluates the merged model; use "
                             "merged or both")  # fmt: skip
    check(settings.sft)
    check_dpo(settings.dpo)
    if settings.eval.limit is not None and settings.eval.limit < 1:
        raise GrapeError("eval.limit must be at least 1")
