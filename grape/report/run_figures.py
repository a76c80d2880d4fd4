"""The charts of runs compared side by side: the training loss per step, and accuracy with its interval per arm.

Plain inputs (`LossCurve`, `Accuracy`), so that `grape report RUN_DIR ...` and the experiments' figures in
docs/ draw with the same code: the report reads them from run directories (grape.report.runs), an
experiment from its own records (experiments/plot_arms.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import plotly.graph_objects as go

from grape.report.figures import HEIGHT, TEMPLATE, source_colors


@dataclass(frozen=True)
class LossCurve:
    """The training loss of one fine-tune as logged: ``losses[i]`` at optimizer step ``steps[i]``."""

    label: str
    steps: list[int]
    losses: list[float]
    finished: bool = True  # False: read from the last checkpoint of a run that has not finished


@dataclass(frozen=True)
class Accuracy:
    """``correct`` of ``judged`` items, with a 95% interval [low, high] (Wilson's, as `grape eval` states it)."""

    label: str
    correct: int
    judged: int
    low: float
    high: float

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.judged if self.judged else None


def loss_figure(curves: Sequence[LossCurve], title: str = "Training loss") -> go.Figure:
    """One line per fine-tune, loss against optimizer step; an unfinished run's line is dashed."""
    colors = source_colors([c.label for c in curves])
    figure = go.Figure()
    for curve in curves:
        name = curve.label if curve.finished else f"{curve.label} (not finished)"
        figure.add_trace(
            go.Scatter(
                x=curve.steps, y=curve.losses, mode="lines+markers" if len(curve.steps) <= 60 else "lines",
                name=name, line={"color": colors[curve.label], "dash": "solid" if curve.finished else "dash"},
                hovertemplate=f"{name}<br>step %{{x}}: loss %{{y:.4f}}<extra></extra>",
            )
        )  # fmt: skip
    figure.update_layout(title=title, xaxis_title="optimizer step", yaxis_title="training loss")
    if max((max(c.steps) for c in curves if c.steps), default=0) <= 12:
        figure.update_xaxes(dtick=1)  # a few steps: one tick each, never a "step 1.5"
    return _finish(figure, legend=len(curves) > 1)


def accuracy_figure(results: Sequence[Accuracy], title: str = "Accuracy with its 95% interval") -> go.Figure:
    """One point per arm at its accuracy, with the interval as an asymmetric error bar; labels name the counts."""
    judged = [r for r in results if r.judged]
    colors = source_colors([r.label for r in judged])
    figure = go.Figure()
    for result in judged:
        accuracy = result.correct / result.judged
        figure.add_trace(
            go.Scatter(
                x=[result.label], y=[accuracy], mode="markers+text", name=result.label,
                marker={"size": 12, "color": colors[result.label]},
                error_y={"type": "data", "symmetric": False, "array": [result.high - accuracy],
                         "arrayminus": [accuracy - result.low], "thickness": 2, "width": 8},
                text=[f"{result.correct} of {result.judged}"], textposition="middle right", cliponaxis=False,
                hovertemplate=f"{result.label}<br>{result.correct} of {result.judged} = %{{y:.1%}}"
                f"<br>95% interval {result.low:.1%} – {result.high:.1%}<extra></extra>",
            )
        )  # fmt: skip
    figure.update_layout(title=title, yaxis_title="accuracy")
    # From 0 to a little above the highest interval (accuracies near the floor are not squashed at the bottom),
    # with a margin so that a point at 0% or 100% shows whole.
    top = min(1.0, max([0.1] + [1.2 * r.high for r in judged]))
    figure.update_yaxes(tickformat=".0%", range=[-0.03 * top, 1.03 * top])
    figure.update_xaxes(type="category", tickangle=-30)
    return _finish(figure, legend=False)


def _finish(figure: go.Figure, legend: bool) -> go.Figure:
    figure.update_layout(template=TEMPLATE, height=HEIGHT, margin={"t": 60, "b": 40, "l": 60, "r": 20},
                         showlegend=legend)  # fmt: skip
    return figure
