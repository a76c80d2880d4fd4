"""The stage table of `grape run`: each stage's settings, where its inputs come from, what it writes.

Adding a stage is one entry in STAGES (and its place in ORDER). A stage's main input is its ``input:``
setting when given, else the output of the nearest earlier stage named in ``upstream``. The stages that
need torch import it when they run, so that reading a pipeline (and `grape --help`) stays fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from grape.data.layout import Columns
from grape.evaluation.settings import EvalSettings
from grape.generation.generate import GenerateSettings, generate
from grape.scoring.settings import ScoreSettings
from grape.selection.select import select
from grape.training.settings import SFTSettings
from grape.verification.verify import verify


@dataclass
class VerifySettings:
    verifier: str = "math"
    workers: int | None = None
    columns: Columns = field(default_factory=Columns)
    layout: str = "auto"
    on_error: str = "fail"
    unsafe_sandbox: bool = False  # code verifier without a wall where none can be built (docs/security.md)


@dataclass
class SelectSettings:
    strategy: str = "grape"
    top_k: int | None = 1
    format: str = "prompt-completion"
    require_correct: bool = False
    seed: int = 0


@dataclass
class ReportSettings:
    png: bool = False  # also write the figures as PNG (needs Chromium for kaleido)


Inputs = dict[str, Path]


@dataclass(frozen=True)
class Stage:
    settings: type  # the dataclass its YAML block fills
    output: str  # the file or folder it writes inside <workdir>/<stage>/
    run: Callable[[Any, Inputs, Path], None]  # (settings, inputs, output path)
    upstream: tuple[str, ...] = ()  # where its main input comes from, nearest first
    takes: tuple[str, ...] = ("input",)  # path settings of its block (relative to the YAML file)


def _generate(settings: GenerateSettings, inputs: Inputs, output: Path) -> None:
    generate(inputs["input"], output, settings)


def _verify(settings: VerifySettings, inputs: Inputs, output: Path) -> None:
    verify(inputs["input"], output, settings.verifier, settings.workers, settings.columns, settings.layout,
           settings.on_error, unsafe_sandbox=settings.unsafe_sandbox)  # fmt: skip


def _score(settings: ScoreSettings, inputs: Inputs, output: Path) -> None:
    from grape.scoring.score import score

    score(inputs["input"], output, settings)


def _select(settings: SelectSettings, inputs: Inputs, output: Path) -> None:
    select(inputs["input"], output, **asdict(settings))


def _report(settings: ReportSettings, inputs: Inputs, output: Path) -> None:
    from grape.report import write_report  # plotly is slow to import; only this stage needs it

    write_report(inputs["input"], inputs.get("selection"), output, output.parent / "png" if settings.png else None)


def _sft(settings: SFTSettings, inputs: Inputs, output: Path) -> None:
    from grape.training.train import sft

    sft(inputs["input"], output, settings)


def _eval(settings: EvalSettings, inputs: Inputs, output: Path) -> None:
    from grape.evaluation.evaluate import evaluate

    if "model" in inputs:  # the model fine-tuned by this pipeline's sft stage
        settings = replace(settings, model=str(inputs["model"]))
    evaluate(inputs["data"], output, settings)


STAGES: dict[str, Stage] = {
    "generate": Stage(GenerateSettings, "candidates.jsonl", _generate),
    "verify": Stage(VerifySettings, "verified.jsonl", _verify, upstream=("generate",)),
    "score": Stage(ScoreSettings, "scores.parquet", _score, upstream=("verify", "generate")),
    "select": Stage(SelectSettings, "selected.jsonl", _select, upstream=("score",)),
    "report": Stage(ReportSettings, "report.html", _report, upstream=("score",)),
    "sft": Stage(SFTSettings, "model", _sft, upstream=("select",)),
    "eval": Stage(EvalSettings, "eval.jsonl", _eval, takes=("data",)),
}
ORDER = ("generate", "verify", "score", "select", "report", "sft", "eval")
# Outputs of other stages that a stage also reads, when those stages are in the pipeline.
EXTRA_INPUTS = {"report": {"selection": "select"}, "eval": {"model": "sft"}}
