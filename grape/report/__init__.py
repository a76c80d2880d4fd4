"""The selection report: one self-contained HTML page with plots of what was chosen and why."""

from grape.report.write import build_report, write_report

__all__ = ["build_report", "write_report"]
