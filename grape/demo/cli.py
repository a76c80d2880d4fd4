"""`grape demo`: score the bundled demo candidates with the embedded target and select the best fit."""

from __future__ import annotations

import argparse
import time
from importlib.resources import files
from pathlib import Path

from grape.console import console
from grape.models.dtypes import ACCEPTED
from grape.models.embedded import DEFAULT_TARGET
from grape.scoring.cli import print_score_summary
from grape.scoring.settings import ScoreSettings
from grape.selection.cli import print_select_summary


def demo_data_path() -> Path:
    """The bundled demo set: 40 instructions, candidates from two embedded models and a reference."""
    return Path(str(files("grape.demo").joinpath("demo.jsonl")))


EXAMPLES = """examples:
  grape demo                                   # the embedded gemma-3-270m on the bundled candidates
  grape demo -o demo-out --model smollm2-135m-instruct"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "demo", help="run score + select on the bundled demo data with the embedded target model",
        description="Score the bundled demo candidates with the embedded target model, select the best fit per "
        "instruction, and write the scores table, the selection and an HTML report.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("-o", "--output-dir", default="grape-demo", help="where to write. Default: ./grape-demo")
    parser.add_argument("--model", default=DEFAULT_TARGET, help=f"target model. Default: {DEFAULT_TARGET}")
    parser.add_argument("--dtype", default="auto", choices=ACCEPTED, help="Default: auto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # The stages are imported here, not at the top: `grape --help` should not wait for torch.
    from grape.report.write import write_report
    from grape.scoring.score import score
    from grape.selection.select import select

    started = time.time()
    out = Path(args.output_dir)
    scores_path, selected_path = out / "scores.parquet", out / "selected.jsonl"
    console.print(f"grape demo: scoring {demo_data_path().name} with [bold]{args.model}[/]")
    rows = score(demo_data_path(), scores_path, ScoreSettings(model=args.model, dtype=args.dtype))
    print_score_summary(rows)
    _, summary = select(scores_path, selected_path, strategy="grape")
    print_select_summary(summary)
    report_path = write_report(scores_path, selected_path, out / "report.html")
    console.print(  # soft_wrap: paths stay unbroken, to copy
        f"scores:    {scores_path}\nselection: {selected_path}\nreport:    {report_path}\n"
        f"done in {time.time() - started:.0f} s",
        soft_wrap=True,
    )
    return 0
