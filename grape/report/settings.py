"""The settings of the report stage (torch-free). The command itself takes only paths: the scores table,
the selection, the HTML file and, with ``--png DIR``, where the figures go."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReportSettings:
    png: bool = False  # a pipeline step: also write the figures as PNG into <step folder>/png (needs Chromium)
