"""`grape report`: the command-line face of grape.report.write_report (a scores table) and
grape.report.run_report.write_run_report (one or several `grape run` workdirs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from grape.console import console
from grape.errors import GrapeError


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report", help="write an HTML report: of a scores table (what was chosen and why), or of pipeline runs "
        "side by side (training loss, eval accuracy with its interval, selections)",
        description="Write one self-contained HTML file (opens offline). Given a scores table: the run's settings, "
        "chosen share and fit per source, fit against response length with its correlation, correctness per "
        "source when verified, and the instructions whose best and second-best candidates were closest. Given "
        "one or more workdirs of `grape run` (one arm each): the training loss of every sft step, the accuracy "
        "of every eval step with its 95% interval, side by side, and the selection pages of each run.",
        epilog="examples:\n"
        "  grape report scores.parquet --selection selected.jsonl -o report.html\n"
        "  grape report runs/pipeline -o run.html                 # one pipeline run\n"
        "  grape report runs/grape runs/lowest -o arms.html --png figures/   # two arms side by side",
    )  # fmt: skip
    parser.add_argument(
        "paths", nargs="+", metavar="SCORES | RUN_DIR",
        help="a scores table written by `grape score`, or one or more workdirs of `grape run` (one arm each)",
    )  # fmt: skip
    parser.add_argument(
        "--selection", default=None, metavar="SELECTED",
        help="with a scores table: the selection written by `grape select` whose choices are marked; default: "
        "the GRAPE choice (highest mean log-prob per instruction), computed from the scores",
    )  # fmt: skip
    parser.add_argument("-o", "--output", default="report.html", help="the HTML file. Default: report.html")
    parser.add_argument(
        "--png", default=None, metavar="DIR",
        help="also write each figure as DIR/<name>.png (needs Chrome or Chromium, e.g. Debian's chromium)",
    )  # fmt: skip
    parser.set_defaults(run=run, trailing="paths")  # `runs/a -o x.html runs/b` reads both runs


def run(args: argparse.Namespace) -> int:
    # imported here, not at the top: `grape --help` stays quick (plotly and pandas take a second)
    from grape.report.run_report import write_run_report
    from grape.report.write import write_report

    paths = [Path(p) for p in args.paths]
    directories = [p.is_dir() for p in paths]
    if all(directories):
        if args.selection:
            raise GrapeError("--selection goes with a scores table; a run directory names its own selections")
        path = write_run_report(paths, args.output, args.png)
    elif len(paths) == 1:
        path = write_report(paths[0], args.selection, args.output, args.png)
    else:
        raise GrapeError("give one scores table, or one or more run directories (workdirs of `grape run`), not both")
    console.print(f"report written to [bold]{path}[/]", soft_wrap=True)  # an unbroken path, to copy
    if args.png:
        console.print(f"figures as PNG in [bold]{Path(args.png)}[/]", soft_wrap=True)
    return 0
