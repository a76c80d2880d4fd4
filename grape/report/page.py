"""Render the report as one self-contained HTML page: plotly.js, the figures and the data inline.

The page loads nothing from the network, so it opens offline and can be mailed or archived as is.
The layout lives in templates/ (base.html.j2 the frame, selection.html.j2 the selection pages, report.html.j2
and run.html.j2 the two reports); this module prepares what the templates show.
"""

from __future__ import annotations

import datetime
from typing import Any

import jinja2
import pandas as pd
import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from grape import __version__
from grape.report.margins import Margin
from grape.report.stats import FitLength

SHOWN_MARGINS = 25  # rows shown before the reader searches; all instructions are in the page

FIGURE_CONFIG = {"displaylogo": False, "responsive": True, "toImageButtonOptions": {"format": "png", "scale": 2}}


WIDE_FIGURES = ("fit_vs_length",)  # the densest chart gets a row of its own


def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("grape.report", "templates"),
        autoescape=True,  # responses are arbitrary text, HTML included: show them, never run them
        undefined=jinja2.StrictUndefined,
    )


def figure_html(figures: dict[str, go.Figure], prefix: str = "") -> dict[str, str]:
    """name -> the figure as an HTML fragment (no plotly.js: the page holds it once), in ``<prefix>figure-<name>``."""
    options = {"full_html": False, "include_plotlyjs": False, "config": FIGURE_CONFIG}
    return {name: figure.to_html(div_id=f"{prefix}figure-{name}", **options) for name, figure in figures.items()}


def selection_view(
    *,
    scores_meta: dict[str, Any],
    selection_meta: dict[str, Any],
    overview: dict[str, int | None],
    fit: FitLength,
    sources: pd.DataFrame,
    figures: dict[str, go.Figure],
    margins: list[Margin],
    prefix: str = "",
) -> dict[str, Any]:
    """What the selection pages (templates/selection.html.j2) show; ``prefix`` goes before every element id."""
    return {
        "prefix": prefix,
        "settings": settings_rows(scores_meta, selection_meta),
        "overview": overview,
        "fit": fit,
        "sources": sources.astype(object).where(sources.notna(), None).to_dict("records"),  # NaN -> None
        "figures": figure_html(figures, prefix),
        "wide": WIDE_FIGURES,
        "margins": margins,
        "shown_margins": SHOWN_MARGINS,
    }


def render(template: str, **context: Any) -> str:
    """A page of templates/ as an HTML string, with plotly.js, the time and grape's version filled in."""
    generated = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    page = environment().get_template(template)
    return page.render(generated=generated, version=__version__, plotly_js=get_plotlyjs(), **context)


def render_page(*, scores_path: str, selection: str, view: dict[str, Any]) -> str:
    """The selection report of one scores table as an HTML string (``view``: `selection_view`)."""
    return render("report.html.j2", scores_path=scores_path, selection_label=selection, page=view)


def settings_rows(scores_meta: dict[str, Any], selection_meta: dict[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs for the settings table, from the scores and selection sidecars."""
    settings = scores_meta.get("settings") or {}
    model = scores_meta.get("model") or {}
    chosen = selection_meta.get("settings") or {}
    versions = scores_meta.get("versions") or {}
    rows = [
        ("scores sidecar", None if scores_meta else "none next to the table: settings unknown"),
        ("input", scores_meta.get("input")),
        ("model", model.get("spec") or settings.get("model")),
        ("model type", model.get("model_type")),
        ("parameters", _millions(model.get("n_parameters"))),
        ("model files", model.get("name_or_path")),
        ("template", settings.get("template")),
        ("EOS appended", settings.get("eos")),
        ("dtype", model.get("dtype") or settings.get("dtype")),
        ("device", model.get("device") or settings.get("device")),
        ("layout", settings.get("layout")),
        ("on error", settings.get("on_error")),
        ("rows by status", _counts(scores_meta.get("counts"))),
        ("scoring time", None if scores_meta.get("seconds") is None else f"{scores_meta['seconds']:.0f} s"),
        ("selection strategy", chosen.get("strategy")),
        ("kept per instruction", chosen.get("top_k")),
        ("require correct", chosen.get("require_correct")),
        ("versions", ", ".join(f"{k} {v}" for k, v in versions.items()) or None),
    ]
    return [(label, _text(value)) for label, value in rows if value is not None]


def _millions(count: int | None) -> str | None:
    return None if count is None else f"{count / 1e6:.1f}M"


def _counts(counts: dict[str, int] | None) -> str | None:
    if not counts:
        return None
    return ", ".join(f"{status} {number}" for status, number in counts.items())


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
