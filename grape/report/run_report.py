"""The run report: one or several `grape run` workdirs (arms) side by side in one self-contained HTML file.

It shows what otherwise stays in JSON: the training loss of every sft step, the accuracy of every eval step
with its 95% interval, and, below them, the selection pages (grape.report.write) of every selection made.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plotly.graph_objects as go

from grape.data.tables import write_atomically
from grape.errors import GrapeError
from grape.report.page import figure_html, render
from grape.report.paired import PairedComparison, paired_comparisons
from grape.report.png import write_pngs
from grape.report.run_figures import Accuracy, LossCurve, accuracy_figure, loss_figure
from grape.report.runs import (
    TRAINING,
    EvalResult,
    Run,
    Selection,
    arm_labels,
    eval_result,
    loss_curve,
    read_run,
    selections,
)
from grape.report.write import Report, build_report


@dataclass
class RunReport:
    runs: list[Run]
    curves: list[LossCurve]
    evals: list[EvalResult]  # one per finished eval step
    selections: list[tuple[Selection, Report]]

    @property
    def accuracies(self) -> list[Accuracy]:
        return [e.accuracy for e in self.evals]

    @property
    def paired(self) -> list[PairedComparison]:
        """Every two eval steps judged on the same items, compared item by item (exact McNemar)."""
        return paired_comparisons(self.evals)

    @property
    def figures(self) -> dict[str, go.Figure]:
        """training_loss when a training step logged a loss, eval_accuracy when an eval step finished."""
        figures = {}
        if any(curve.steps for curve in self.curves):
            figures["training_loss"] = loss_figure([c for c in self.curves if c.steps])
        if any(a.judged for a in self.accuracies):
            figures["eval_accuracy"] = accuracy_figure(self.accuracies, "Eval accuracy with its 95% interval (Wilson)")
        return figures

    def html(self) -> str:
        pages = [
            {"label": s.label, "scores": str(s.scores), "chosen_by": report.selection_label,
             "view": report.view(prefix=f"s{i}-")}
            for i, (s, report) in enumerate(self.selections, start=1)
        ]  # fmt: skip
        runs = [_run_row(run) for run in self.runs]
        figures = figure_html(self.figures)
        return render("run.html.j2", runs=runs, evals=self.evals, paired=self.paired, curves=self.curves,
                      figures=figures, selections=pages)  # fmt: skip


def build_run_report(run_dirs: list[str | Path]) -> RunReport:
    """Read every run directory (an arm each) and gather what the page shows (writes nothing)."""
    if not run_dirs:
        raise GrapeError("no run directory given")
    paths = [Path(p) for p in run_dirs]
    runs = [read_run(path, label) for path, label in zip(paths, arm_labels(paths), strict=True)]
    curves, evals, chosen = [], [], []
    for run in runs:
        for step in [s for s in run.steps if s.type in TRAINING]:
            curve = loss_curve(step.output, run.step_label(step, TRAINING), step.type)
            if curve is not None:
                curves.append(curve)
        for step in run.of_type("eval"):
            result = eval_result(step.output, run.step_label(step)) if step.finished else None
            if result is not None:
                evals.append(result)
        chosen += [(s, build_report(s.scores, s.selection)) for s in selections(run)]
    return RunReport(runs, curves, evals, chosen)


def write_run_report(run_dirs: list[str | Path], output_html: str | Path, png_dir: str | Path | None = None) -> Path:
    """Write the run report of ``run_dirs`` to ``output_html``; with ``png_dir`` also every figure as PNG there
    (``training_loss.png``, ``eval_accuracy.png``, and ``<selection>-<figure>.png`` per selection)."""
    report = build_run_report(run_dirs)
    output_html = write_atomically(output_html, lambda h: h.write(report.html().encode()))  # never half a page
    if png_dir is not None:
        figures = dict(report.figures)
        for selection, page in report.selections:
            figures.update({f"{_file_name(selection.label)}-{name}": f for name, f in page.figures.items()})
        write_pngs(figures, png_dir)
    return output_html


def _run_row(run: Run) -> dict[str, Any]:
    done = [step for step in run.steps if step.finished]
    return {"label": run.label, "path": str(run.path), "finished": len(done), "planned": len(run.steps),
            "steps": [(step.name, step.type, step.finished, step.seconds) for step in run.steps]}  # fmt: skip


def _file_name(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", label).strip("_") or "selection"
