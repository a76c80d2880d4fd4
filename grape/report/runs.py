"""Read what a `grape run` workdir holds: its steps, sft's training loss, eval's accuracy with its interval,
and the selections made, so that `grape report RUN_DIR [RUN_DIR ...]` shows them, runs side by side.

A run directory is a pipeline's ``workdir``: ``pipeline.resolved.yaml`` lists its steps in order (name,
type, output), and the folder of each finished step holds ``stage.json`` (grape/pipeline/cache.py and
checks.py write both; the file names are repeated here because a stage does not import the orchestrator,
and tests/report checks that they agree). Outputs are found by step folder and file name, not by the
absolute paths recorded, so a run directory that was moved or copied still reads.

What is read, and from where:
- training loss: a training step's ``grape-<type>.json`` (sft, dpo, reward-model: ``metrics.loss_curve``,
  written when it finished), or while it runs (or after it was cut) ``log_history`` of the trainer's last
  ``checkpoints/*/trainer_state.json``;
- accuracy: an eval step's sidecar (``summary``: correct, judged and the Wilson interval ``ci95``);
- selections: a select step's output and the scores table its sidecar names; a score step that no
  select step read is reported with the GRAPE choice computed (as `grape report SCORES` does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from grape.data.tables import read_sidecar, read_table_rows
from grape.errors import GrapeError
from grape.report.run_figures import Accuracy, LossCurve

RESOLVED, STATE = "pipeline.resolved.yaml", "stage.json"  # grape.pipeline.checks.RESOLVED, cache.STATE
CHECKPOINTS, TRAINER_STATE = "checkpoints", "trainer_state.json"  # grape.training, and transformers' Trainer
TRAINING = ("sft", "dpo", "reward-model")  # step types that train with a Trainer and log a loss curve


def done_name(kind: str) -> str:
    """What a training step writes last, with its loss curve: ``grape-sft.json`` (grape.training.sft.DONE_NAME)."""
    return f"grape-{kind}.json"


@dataclass(frozen=True)
class Step:
    name: str  # its folder's name (``tune.2`` inside a repeat block)
    type: str
    output: Path
    finished: bool
    seconds: float | None  # how long its last run took (None: not finished)


@dataclass(frozen=True)
class Selection:
    label: str
    scores: Path
    selection: Path | None  # None: the GRAPE choice, computed from the scores


@dataclass(frozen=True)
class EvalResult:
    accuracy: Accuracy
    items: int  # judged and unjudged (an item without a gold answer)
    data: str | None  # the items file, as the eval step recorded it
    model: str | None  # the model evaluated, as given to the eval step
    verdicts: dict[str, bool] = field(default_factory=dict)  # item id -> right, for every judged item

    @property
    def data_name(self) -> str:
        return "–" if self.data is None else Path(self.data).name


@dataclass
class Run:
    label: str  # the arm's name in legends and tables
    path: Path
    steps: list[Step]

    def of_type(self, kind: str) -> list[Step]:
        return [step for step in self.steps if step.type == kind]

    def step_label(self, step: Step, kinds: tuple[str, ...] = ()) -> str:
        """The arm's name, plus the step's when the run has several steps of its type (or of ``kinds``)."""
        alike = [s for s in self.steps if s.type in (kinds or (step.type,))]
        return self.label if len(alike) == 1 else f"{self.label} · {step.name}"


def read_run(path: str | Path, label: str | None = None) -> Run:
    """The steps of the run directory at ``path`` (the workdir of `grape run`), in the order they run."""
    path = Path(path)
    if not path.is_dir():
        raise GrapeError(f"{path}: no such run directory (give the workdir of `grape run`)")
    resolved = path / RESOLVED
    if resolved.is_file():
        try:
            planned = (yaml.safe_load(resolved.read_text(encoding="utf-8")) or {}).get("steps") or []
        except yaml.YAMLError as exc:
            raise GrapeError(f"{resolved}: malformed ({str(exc).splitlines()[0]})") from exc
        entries = [(str(s["name"]), str(s["type"]), Path(str(s["output"])).name) for s in planned]
    else:  # the resolved pipeline was removed: the finished steps, in the order they finished
        states = sorted((_json(f) or {} for f in path.glob(f"*/{STATE}")), key=lambda s: s.get("finished_at", 0))
        entries = [(str(s["step"]), str(s["type"]), str(s["output"])) for s in states if "step" in s]
    if not entries:
        raise GrapeError(f"{path}: not a pipeline run directory (no {RESOLVED}, no finished step folders)")
    steps = []
    for name, kind, output in entries:
        state = _json(path / name / STATE)
        steps.append(Step(name, kind, path / name / output, state is not None, (state or {}).get("seconds")))
    return Run(label or path.name, path, steps)


def arm_labels(paths: list[Path]) -> list[str]:
    """Short distinct names for run directories: their own names, with parent folders added until distinct."""
    parts = [Path(p).resolve().parts for p in paths]
    for depth in range(1, max(len(p) for p in parts) + 1):
        labels = ["/".join(p[-depth:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(p) for p in paths]  # the same directory given twice


def loss_curve(model_dir: Path, label: str, kind: str = "sft") -> LossCurve | None:
    """The loss curve of a training step's output directory (``kind``: its type): from ``grape-<kind>.json``,
    else from its last checkpoint; None if neither is there."""
    done = _json(model_dir / done_name(kind))
    if done is not None:
        points = (done.get("metrics") or {}).get("loss_curve") or []  # (step, loss) or (step, loss, accuracy)
        return LossCurve(label, [int(p[0]) for p in points], [float(p[1]) for p in points], finished=True)
    checkpoints = sorted(model_dir.glob(f"{CHECKPOINTS}/checkpoint-*/{TRAINER_STATE}"), key=_checkpoint_step)
    state = _json(checkpoints[-1]) if checkpoints else None
    if state is None:
        return None
    logged = [entry for entry in state.get("log_history") or [] if "loss" in entry and "step" in entry]
    return LossCurve(label, [int(e["step"]) for e in logged], [float(e["loss"]) for e in logged], finished=False)


def eval_result(output: Path, label: str) -> EvalResult | None:
    """Correct of judged with the 95% interval, from an eval output's sidecar; None when there is none."""
    meta = read_sidecar(output)
    summary = meta.get("summary")
    if not summary:
        return None
    try:
        low, high = summary["ci95"]
        accuracy = Accuracy(label, int(summary["correct"]), int(summary["judged"]), float(low), float(high))
        items = int(summary["items"])
    except (KeyError, TypeError, ValueError) as exc:
        raise GrapeError(f"{output}: its sidecar's summary lacks items, correct, judged or ci95 ({exc})") from exc
    model = (meta.get("settings") or {}).get("model")
    verdicts = {str(r["id"]): bool(r["correct"]) for r in _rows(output) if r.get("correct") is not None and "id" in r}
    return EvalResult(accuracy, items, meta.get("data"), None if model is None else str(model), verdicts)


def _rows(output: Path) -> list[dict[str, Any]]:
    """The eval output's per-item rows (none when the file is gone: the summary still reads)."""
    return read_table_rows(output) if output.is_file() else []


def selections(run: Run) -> list[Selection]:
    """The selections of a run (each with its scores table), then score steps no select step read."""
    found: list[Selection] = []
    for step in run.of_type("select"):
        if not step.finished:
            continue
        named = read_sidecar(step.output).get("scores")
        scores = _relocated(Path(named), run.path) if named else None
        if scores is not None:
            found.append(Selection(run.step_label(step), scores, step.output))
    read = {s.scores.resolve() for s in found}
    for step in run.of_type("score"):
        if step.finished and step.output.resolve() not in read:
            found.append(Selection(run.step_label(step), step.output, None))
    return found


def _relocated(recorded: Path, run_dir: Path) -> Path | None:
    """The same step folder and file in ``run_dir`` (the run may have been moved or copied), else the path as
    recorded (a table from outside the run); None when neither exists."""
    here = run_dir / recorded.parent.name / recorded.name
    return here if here.is_file() else recorded if recorded.is_file() else None


def _checkpoint_step(path: Path) -> int:
    suffix = path.parent.name.removeprefix("checkpoint-")
    return int(suffix) if suffix.isdigit() else -1


def _json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # absent, or torn by a kill mid-write
    return data if isinstance(data, dict) else None
