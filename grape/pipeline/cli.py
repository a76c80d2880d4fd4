"""`grape run PIPELINE.yaml`: the command-line face of grape.pipeline.run."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from grape.console import console, print_table
from grape.data.tables import read_sidecar
from grape.pipeline.run import Outcome, run_pipeline
from grape.pipeline.stages import ORDER


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a YAML pipeline (generate → verify → score → select → report → sft → eval), cached",
        description="Run the stages of a pipeline file in order. Each stage is cached by a hash of its settings "
        "and inputs: a re-run does only what changed, and an interrupted run resumes (sft from its last "
        "checkpoint, score from its parts, generate from its journal). Relative paths in the file are relative to "
        "it. The resolved pipeline and a run log are written into the workdir.",
    )  # fmt: skip
    parser.add_argument("pipeline", help="pipeline YAML (see examples/pipeline.yaml)")
    parser.add_argument(
        "--force", action="append", default=[], metavar="STAGE", choices=ORDER,
        help="redo this stage though cached (repeatable); later ones rerun if its output changed",
    )  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    outcomes = run_pipeline(args.pipeline, tuple(args.force))
    rows = [(o.stage, o.status, f"{o.seconds:.0f}", headline(o), str(o.output)) for o in outcomes]
    print_table("Pipeline", ["stage", "status", "seconds", "result", "output"], rows)
    if outcomes:
        console.print(f"resolved pipeline and run log in [bold]{outcomes[0].output.parent.parent}[/]")
    return 0


def headline(outcome: Outcome) -> str:
    """One line of what a stage produced, read back from its sidecar."""
    output = outcome.output
    if outcome.stage == "sft":
        done = output / "grape-sft.json"
        metrics = json.loads(done.read_text())["metrics"] if done.is_file() else {}
        first, last = metrics.get("loss_first"), metrics.get("loss_last")
        if first is None or last is None:
            return f"{metrics.get('steps')} steps"
        return f"{metrics.get('steps')} steps, loss {first:.3f} → {last:.3f}"
    meta = read_sidecar(output) if Path(output).is_file() else {}
    if outcome.stage == "eval" and meta.get("summary", {}).get("accuracy") is not None:
        s = meta["summary"]
        low, high = (100 * x for x in s["ci95"])
        return f"accuracy {100 * s['accuracy']:.1f}% [{low:.1f}, {high:.1f}] of {s['judged']}"
    if outcome.stage == "select" and "summary" in meta:
        return f"{meta['summary']['selected']} selected of {meta['summary']['instructions']} instructions"
    if outcome.stage == "score" and "counts" in meta:
        return ", ".join(f"{k} {v}" for k, v in meta["counts"].items())
    return ""
