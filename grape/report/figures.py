"""The report's charts, as Plotly figures: the HTML embeds them and ``--png`` exports the same ones.

Every chart colours a source the same way and lists sources in the same order (most chosen first),
so the eye can move from one chart to the next.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from grape.report.stats import FitLength

TEMPLATE = "plotly_white"
HEIGHT = 460


def source_colors(sources: list[str]) -> dict[str, str]:
    """A distinct colour per source; the palette grows with the number of sources (10, 24, then 26 reused)."""
    palette = px.colors.qualitative.Plotly if len(sources) <= 10 else px.colors.qualitative.Dark24
    if len(sources) > len(palette):
        palette = px.colors.qualitative.Alphabet
    return {source: palette[i % len(palette)] for i, source in enumerate(sources)}


def report_figures(candidates: pd.DataFrame, sources: pd.DataFrame, fit: FitLength) -> dict[str, go.Figure]:
    """name -> figure: chosen_share, fit_by_source, fit_vs_length, and correct_share when verified.

    ``sources`` is `stats.source_table` (its order is the order of the bars and boxes)."""
    order = list(sources["source"])
    colors = source_colors(order)
    figures = {
        "chosen_share": _chosen_share(sources, order, colors),
        "fit_by_source": _fit_by_source(candidates, order, colors),
        "fit_vs_length": _fit_vs_length(candidates, order, colors, fit),
    }
    if candidates["correct"].notna().any():
        figures["correct_share"] = _correct_share(sources, order, colors)
    return figures


def _chosen_share(sources: pd.DataFrame, order: list[str], colors: dict[str, str]) -> go.Figure:
    total = int(sources["chosen"].sum())
    frame = sources.assign(label=[f"{c} of {total}" for c in sources["chosen"]])
    figure = px.bar(
        frame, x="source", y="chosen_share", color="source", text="label",
        category_orders={"source": order}, color_discrete_map=colors,
        hover_data={"candidates": True, "chosen": True, "label": False},
        labels={"chosen_share": "share of chosen", "source": ""},
        title=f"Chosen share per source ({total} chosen)",
    )  # fmt: skip
    figure.update_traces(textposition="outside", textangle=0, cliponaxis=False)
    figure.update_yaxes(tickformat=".0%", rangemode="tozero")
    return _finish(figure, categorical=True)


def _fit_by_source(candidates: pd.DataFrame, order: list[str], colors: dict[str, str]) -> go.Figure:
    scored = _scored(candidates)
    figure = px.box(
        scored, x="source", y="mean_logprob", color="source", points=False,
        category_orders={"source": order}, color_discrete_map=colors,
        labels={"mean_logprob": "mean log-prob per response token", "source": ""},
        title="Fit per source (higher = more natural to the target)",
    )  # fmt: skip
    return _finish(figure, categorical=True)


def _fit_vs_length(candidates: pd.DataFrame, order: list[str], colors: dict[str, str], fit: FitLength) -> go.Figure:
    scored = _scored(candidates)
    figure = px.scatter(
        scored, x="n_tokens", y="mean_logprob", color="source", log_x=True, opacity=0.55,
        category_orders={"source": order}, color_discrete_map=colors,
        hover_data={"id": True, "candidate": True, "chosen": True},
        labels={"n_tokens": "response tokens (log scale)", "mean_logprob": "mean log-prob per response token"},
        title=f"Fit vs response length: Pearson r = {_r(fit.pearson)}, Spearman ρ = {_r(fit.spearman)} (n = {fit.n})",
    )  # fmt: skip
    figure.update_xaxes(dtick="D2")  # label 1, 2, 5 per decade: every digit under a log axis is clutter
    dense = len(scored) >= 2000  # thousands of points: smaller dots and rings
    figure.update_traces(marker={"size": 4 if dense else 6})
    chosen = scored[scored["chosen"]]
    figure.add_trace(
        go.Scatter(
            x=chosen["n_tokens"], y=chosen["mean_logprob"], mode="markers", name="chosen",
            marker={"symbol": "circle-open", "size": 7 if dense else 11, "color": "black", "line": {"width": 1.5}},
            customdata=chosen[["id", "source"]], hovertemplate="chosen: %{customdata[1]}<br>id %{customdata[0]}"
            "<br>%{x} tokens, %{y:.3f}<extra></extra>",
        )
    )  # fmt: skip
    return _finish(figure).update_layout(height=HEIGHT + 120)


def _correct_share(sources: pd.DataFrame, order: list[str], colors: dict[str, str]) -> go.Figure:
    frame = sources[sources["verified"] > 0]
    frame = frame.assign(label=[f"{c} of {v}" for c, v in zip(frame["correct"], frame["verified"], strict=True)])
    figure = px.bar(
        frame, x="source", y="correct_share", color="source", text="label",
        category_orders={"source": order}, color_discrete_map=colors,
        labels={"correct_share": "share verified correct", "source": ""},
        title="Correct share per source (of the candidates the verifier judged)",
    )  # fmt: skip
    figure.update_traces(textposition="outside", textangle=0, cliponaxis=False)
    figure.update_yaxes(tickformat=".0%", range=[0, 1.05])
    return _finish(figure, categorical=True)


def _scored(candidates: pd.DataFrame) -> pd.DataFrame:
    scored = candidates[candidates["scored"]]
    return scored.astype({"n_tokens": int, "mean_logprob": float, "candidate": int})


def _finish(figure: go.Figure, categorical: bool = False) -> go.Figure:
    figure.update_layout(template=TEMPLATE, height=HEIGHT, margin={"t": 60, "b": 40, "l": 60, "r": 20},
                         legend_title_text="source")  # fmt: skip
    if categorical:  # one bar or box per source, named on the axis: a legend would repeat the labels
        figure.update_layout(showlegend=False)
        figure.update_xaxes(tickangle=-30)
    return figure


def _r(value: float | None) -> str:
    return "n/a" if value is None else f"{value:+.2f}"
