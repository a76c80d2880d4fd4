"""`grape report`: the command-line face of grape.report.write_report."""

from __future__ import annotations

import argparse
from pathlib import Path

from grape.console import console


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write an HTML report of what was chosen and why (plots, settings, close calls)",
        description="Write one self-contained HTML file (opens offline) about a scores table: the run's settings, "
        "chosen share and fit per source, fit against response length with its correlation, correctness per "
        "source when verified, and the instructions whose best and second-best candidates were closest.",
    )  # fmt: skip
    parser.add_argument("scores", help="scores table written by `grape score`")
    parser.add_argument(
        "--selection", default=None, metavar="SELECTED",
        help="selection written by `grape select` whose choices are marked; default: the GRAPE choice "
        "(highest mean log-prob per instruction), computed from the scores",
    )  # fmt: skip
    parser.add_argument("-o", "--output", default="report.html", help="the HTML file. Default: report.html")
    parser.add_argument(
        "--png", default=None, metavar="DIR",
        help="also write each figure as DIR/<name>.png (needs Chrome or Chromium, e.g. Debian's chromium)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grape.report.write import write_report  # here, not at the top: `grape --help` stays quick

    path = write_report(args.scores, args.selection, args.output, args.png)
    console.print(f"report written to [bold]{path}[/]", soft_wrap=True)  # an unbroken path, to copy
    if args.png:
        console.print(f"figures as PNG in [bold]{Path(args.png)}[/]", soft_wrap=True)
    return 0
