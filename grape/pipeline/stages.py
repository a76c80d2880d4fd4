"""The step types of `grape run`: each type's settings, its input files, where they come from, what it writes.

Adding a type is one entry in STAGES. A step's input file is its ``input:`` when given, else the output of
the nearest earlier step of a type named in ``links`` (the same rule fills report's ``selection`` and
eval's ``model``). The types that need torch import it when they run, so that reading a pipeline (and
`grape --help`, and `grape run --dry-run`) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from grape.budgeting.settings import BudgetSettings, check_budget
from grape.decoding.settings import DecodeSettings
from grape.decoding.settings import check as check_decode
from grape.errors import GrapeError
from grape.evaluation.settings import EvalSettings
from grape.generation.generate import generate
from grape.generation.settings import GenerateSettings
from grape.generation.work import generator_specs
from grape.report.settings import ReportSettings
from grape.rl.settings import RLSettings
from grape.rl.settings import check as check_rl
from grape.scoring.parts import parts_root
from grape.scoring.settings import ScoreSettings
from grape.search.settings import DeficiencySettings, MCTSSettings, check_deficiency, check_mcts
from grape.selection.pairs import pairs
from grape.selection.select import select
from grape.selection.settings import PairsSettings, SelectSettings, check_pairs
from grape.tools.curriculum_settings import CurriculumSettings, check_curriculum
from grape.tools.settings import PrepareSettings
from grape.tools.settings import check as check_prepare
from grape.training.reward_model_settings import RewardModelSettings, check_reward_model
from grape.training.settings import DPOSettings, SFTSettings, check_dpo
from grape.training.settings import check as check_sft
from grape.verification.settings import VerifySettings
from grape.verification.settings import check as check_verify
from grape.verification.verify import verify

Inputs = dict[str, Path]
MCTS_TREES = "mcts.trees.jsonl"  # in the workdir: the mcts steps' searches, kept (grape.search.trees_file)


@dataclass(frozen=True)
class Stage:
    settings: type  # the dataclass its YAML block fills
    output: str  # the file or folder it writes inside its step folder
    run: Callable[[Any, Inputs, Path], None]  # (settings, input files, output path)
    files: tuple[str, ...] = ("input",)  # keys of its block that name input files, not settings
    links: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key -> types whose output fills it if unset
    optional: tuple[str, ...] = ()  # input files it can do without
    check: Callable[[Any], None] | None = None  # raises GrapeError for settings it cannot run with
    # What a rerun under other settings or inputs keeps of its step folder: stores keyed by all that changes
    # their content (score's parts: by model, template, EOS, dtype, then each instruction's text), so that a
    # pipeline re-scores only the instructions whose score can have changed.
    kept: tuple[str, ...] = ()


def _generate(settings: GenerateSettings, inputs: Inputs, output: Path) -> None:
    generate(inputs["input"], output, settings)


def _check_generate(settings: GenerateSettings) -> None:
    if not settings.models:
        raise GrapeError("no generator: give `models: [...]`")
    generator_specs(settings)  # names, templates, sampling, limit


def _verify(settings: VerifySettings, inputs: Inputs, output: Path) -> None:
    verify(inputs["input"], output, settings)


def _score(settings: ScoreSettings, inputs: Inputs, output: Path) -> None:
    from grape.scoring.score import score

    score(inputs["input"], output, settings)


def _select(settings: SelectSettings, inputs: Inputs, output: Path) -> None:
    select(inputs["input"], output, settings)


def _pairs(settings: PairsSettings, inputs: Inputs, output: Path) -> None:
    pairs(inputs["input"], output, settings)


def _report(settings: ReportSettings, inputs: Inputs, output: Path) -> None:
    from grape.report import write_report  # plotly is slow to import; only this type needs it

    write_report(inputs["input"], inputs.get("selection"), output, output.parent / "png" if settings.png else None)


def _sft(settings: SFTSettings, inputs: Inputs, output: Path) -> None:
    from grape.training.sft import sft

    sft(inputs["input"], output, settings)


def _dpo(settings: DPOSettings, inputs: Inputs, output: Path) -> None:
    from grape.training.dpo import dpo

    dpo(inputs["input"], output, settings)


def _budget(settings: BudgetSettings, inputs: Inputs, output: Path) -> None:
    from grape.budgeting.run import budget

    budget(inputs["input"], inputs["pairs"], inputs["data"], output.parent, settings, heldout=inputs.get("heldout"))


def _reward_model(settings: RewardModelSettings, inputs: Inputs, output: Path) -> None:
    from grape.training.reward_model import reward_model

    reward_model(inputs["input"], output, settings)


def _decode(settings: DecodeSettings, inputs: Inputs, output: Path) -> None:
    from grape.decoding.decode import decode

    decode(inputs["input"], output, settings)


def _rl(settings: RLSettings, inputs: Inputs, output: Path) -> None:
    from grape.rl.run import rl

    rl(inputs["input"], output, settings)


def _tools(settings: PrepareSettings, inputs: Inputs, output: Path) -> None:
    from grape.tools.prepare import prepare

    prepare(inputs["input"], output, settings)


def _curriculum(settings: CurriculumSettings, inputs: Inputs, output: Path) -> None:
    from grape.tools.curriculum import curriculum

    curriculum(inputs["input"], output, settings)


def _deficiency(settings: DeficiencySettings, inputs: Inputs, output: Path) -> None:
    from grape.search.deficiency import deficiency

    deficiency(inputs["input"], output, settings)


def _mcts(settings: MCTSSettings, inputs: Inputs, output: Path) -> None:
    from grape.search.run import mcts

    # the searches outlive the step's folder (wiped when its settings change): other pair rules reuse them
    mcts(inputs["input"], output, replace(settings, trees=settings.trees or str(output.parent.parent / MCTS_TREES)))


def _eval(settings: EvalSettings, inputs: Inputs, output: Path) -> None:
    from grape.evaluation.evaluate import evaluate

    evaluate(inputs["data"], output, settings)


# fmt: off
STAGES: dict[str, Stage] = {
    "generate": Stage(GenerateSettings, "candidates.jsonl", _generate, check=_check_generate),
    "verify": Stage(VerifySettings, "verified.jsonl", _verify, links={"input": ("generate",)}, check=check_verify),
    "score": Stage(ScoreSettings, "scores.parquet", _score, links={"input": ("verify", "generate")},
                   kept=(parts_root("scores.parquet").name,)),
    "select": Stage(SelectSettings, "selected.jsonl", _select, links={"input": ("score",)}),
    "pairs": Stage(PairsSettings, "pairs.jsonl", _pairs, links={"input": ("score",)}, check=check_pairs),
    "report": Stage(ReportSettings, "report.html", _report, files=("input", "selection"), optional=("selection",),
                    links={"input": ("score",), "selection": ("select",)}),
    "sft": Stage(SFTSettings, "model", _sft, links={"input": ("select",)}, check=check_sft),
    "dpo": Stage(DPOSettings, "model", _dpo, links={"input": ("pairs",)}, check=check_dpo),
    "rl": Stage(RLSettings, "model", _rl, links={"model": ("sft",)}, check=check_rl),
    "eval": Stage(EvalSettings, "eval.jsonl", _eval, files=("data",), links={"model": ("sft", "dpo", "rl")}),
    "budget": Stage(BudgetSettings, "results.jsonl", _budget, files=("input", "pairs", "data", "heldout"),
                    optional=("heldout",), links={"input": ("select",), "pairs": ("pairs",)}, check=check_budget),
    "reward-model": Stage(RewardModelSettings, "model", _reward_model, links={"input": ("pairs",)},
                           check=check_reward_model),
    "decode": Stage(DecodeSettings, "decoded.jsonl", _decode, check=check_decode,
                     links={"model": ("sft",), "baseline": ("dpo",), "reward": ("reward-model",)}),
    # iTool (docs/tools.md, examples/itool.yaml): tool rows, the warm-up's order, deficient rows, MCTS pairs
    "tools": Stage(PrepareSettings, "rows.jsonl", _tools, check=check_prepare),
    "curriculum": Stage(CurriculumSettings, "ordered.jsonl", _curriculum, links={"input": ("tools",)},
                        check=check_curriculum),
    "deficiency": Stage(DeficiencySettings, "deficient.jsonl", _deficiency, links={"input": ("tools",)},
                        check=check_deficiency),
    "mcts": Stage(MCTSSettings, "pairs.jsonl", _mcts, links={"input": ("deficiency",)}, check=check_mcts),
}
# fmt: on
# The order of the older `stages:` mapping form, in which each type appears at most once.
ORDER = ("generate", "verify", "score", "select", "pairs", "report", "sft", "dpo", "eval")
