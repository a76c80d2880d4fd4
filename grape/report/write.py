"""The report stage: from a scores table (and optionally a selection) to one self-contained HTML file."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from grape.data.tables import write_atomically
from grape.report.collect import ReportInputs, collect
from grape.report.figures import report_figures
from grape.report.margins import Margin, margins
from grape.report.page import render_page, selection_view
from grape.report.png import write_pngs
from grape.report.stats import FitLength, fit_length, overview, source_table


@dataclass
class Report:
    """Everything the page shows, computed once; the HTML and the PNGs are views of it."""

    inputs: ReportInputs
    overview: dict[str, int | None]
    fit: FitLength
    sources: pd.DataFrame  # stats.source_table
    figures: dict[str, go.Figure]
    margins: list[Margin]

    @property
    def selection_label(self) -> str:
        """What was chosen: the selection file and its strategy, or the GRAPE choice computed here."""
        if self.inputs.selection_path is None:
            return "none given: the GRAPE choice (highest mean log-prob per instruction), computed here"
        strategy = self.inputs.selection_meta.get("settings", {}).get("strategy", "unknown strategy")
        return f"{self.inputs.selection_path} ({strategy})"

    def view(self, prefix: str = "") -> dict[str, Any]:
        """What the selection pages show (page.selection_view); ``prefix`` keeps element ids apart."""
        return selection_view(
            scores_meta=self.inputs.scores_meta,
            selection_meta=self.inputs.selection_meta,
            overview=self.overview,
            fit=self.fit,
            sources=self.sources,
            figures=self.figures,
            margins=self.margins,
            prefix=prefix,
        )

    def html(self) -> str:
        return render_page(scores_path=str(self.inputs.scores_path), selection=self.selection_label, view=self.view())


def build_report(scores_path: str | Path, selection_path: str | Path | None = None) -> Report:
    """Read the tables and compute the report's numbers and figures (writes nothing)."""
    inputs = collect(scores_path, selection_path)
    frame = inputs.candidates
    fit = fit_length(frame)
    sources = source_table(frame)
    return Report(
        inputs=inputs,
        overview=overview(frame, inputs.unreadable_rows),
        fit=fit,
        sources=sources,
        figures=report_figures(frame, sources, fit),
        margins=margins(frame),
    )


def write_report(
    scores_path: str | Path,
    selection_path: str | Path | None,
    output_html: str | Path,
    png_dir: str | Path | None = None,
) -> Path:
    """Write the HTML report of a scores table (and selection; None = compute the GRAPE choice).

    With ``png_dir`` the same figures are also written there as PNG files. Returns the HTML path.
    """
    report = build_report(scores_path, selection_path)
    output_html = write_atomically(output_html, lambda h: h.write(report.html().encode()))  # never half a page
    if png_dir is not None:
        write_pngs(report.figures, png_dir)
    return output_html
