"""The selection report: one self-contained HTML page with plots of what was chosen and why."""

from __future__ import annotations

from typing import Any

__all__ = ["build_report", "write_report"]


def __getattr__(name: str) -> Any:
    # Loaded on first use: plotly and pandas take a second to import, and `grape --help` imports
    # grape.report.cli, which needs neither.
    if name in __all__:
        from grape.report import write

        return getattr(write, name)
    raise AttributeError(f"module 'grape.report' has no attribute {name!r}")
