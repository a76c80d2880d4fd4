"""`grape run PIPELINE.yaml [steps.NAME.SETTING=VALUE ...] [--dry-run]`: the command-line face of grape.pipeline."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from grape.console import console, print_table
from grape.data.tables import read_sidecar
from grape.pipeline.preview import Preview, preview_pipeline
from grape.pipeline.run import Outcome, run_pipeline

EXAMPLES = """examples:
  grape run examples/pipeline.yaml --dry-run   # what would run, what is cached, last run's times
  grape run examples/pipeline.yaml
  grape run examples/s3ft.yaml steps.sft.max_steps=20 --force sft"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "run", help="run a YAML pipeline of named steps (generate, verify, score, select, pairs, sft, dpo, rl, eval, "
        "…), cached",
        description="Run the steps of a pipeline file in order; a `repeat: N` block runs its steps N times. Each "
        "step is cached by a hash of its settings and inputs: a re-run does only what changed, and an interrupted "
        "run resumes (sft from its last checkpoint, score from its parts, generate from its journal). The whole "
        "pipeline is checked before the first step. Relative paths in the file are relative to it. The resolved "
        "pipeline and a run log are written into the workdir; grape never clears a folder it did not make.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("pipeline", help="pipeline YAML (see examples/pipeline.yaml)")
    parser.add_argument(
        "overrides", nargs="*", metavar="steps.STEP.SETTING=VALUE",
        help="override one setting of one step (also STEP.SETTING=VALUE, defaults.SETTING=VALUE); the value is YAML",
    )  # fmt: skip
    parser.add_argument("--dry-run", action="store_true",
                        help="show each step, its inputs, and whether it is cached or would run (and why)")  # fmt: skip
    parser.add_argument(
        "--force", action="append", default=[], metavar="STEP",
        help="redo this step though cached (repeatable; NAME for every iteration, NAME.I for one); later ones "
        "rerun if its output changed",
    )  # fmt: skip
    parser.set_defaults(run=run, trailing="overrides")  # `p.yaml --dry-run x=1` works as `p.yaml x=1 --dry-run`


def run(args: argparse.Namespace) -> int:
    if args.dry_run:
        previews = preview_pipeline(args.pipeline, args.force, args.overrides)
        rows = [(p.step, p.type, "\n".join(p.inputs), p.status, p.reason, _seconds(p.last_seconds)) for p in previews]
        print_table(f"{args.pipeline} (dry run)", ["step", "type", "inputs", "status", "why", "last run"], rows)
        console.print(time_to_run(previews), highlight=False)
        return 0
    outcomes = run_pipeline(args.pipeline, args.force, args.overrides)
    rows = [(o.step, o.type, o.status, f"{o.seconds:.0f}", headline(o), str(o.output)) for o in outcomes]
    print_table("Pipeline", ["step", "type", "status", "seconds", "result", "output"], rows)
    if outcomes:
        console.print(f"resolved pipeline and run log in [bold]{outcomes[0].output.parent.parent}[/]")
    return 0


def time_to_run(previews: list[Preview]) -> str:
    """A line on what would run and how long those steps took the last time they ran here."""
    would = [p for p in previews if p.status != "cached"]
    if not would:
        return "every step is cached: a run does nothing"
    known = [p.last_seconds for p in would if p.last_seconds is not None]
    line = f"{len(would)} of {len(previews)} steps would run or may run (depends)"
    if known:
        line += f"; {len(known)} of them took {_seconds(sum(known))} in all when they last ran here"
    unknown = len(would) - len(known)
    return line + (f"; {unknown} never finished here (no time known)" if unknown else "")


def _seconds(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def headline(outcome: Outcome) -> str:
    """One line of what a step produced, read back from its sidecar."""
    output = outcome.output
    if outcome.type == "sft":
        done = output / "grape-sft.json"
        metrics = json.loads(done.read_text())["metrics"] if done.is_file() else {}
        first, last = metrics.get("loss_first"), metrics.get("loss_last")
        if first is None or last is None:
            return f"{metrics.get('steps')} steps"
        return f"{metrics.get('steps')} steps, loss {first:.3f} → {last:.3f}"
    meta = read_sidecar(output) if Path(output).is_file() else {}
    if outcome.type == "eval" and meta.get("summary", {}).get("accuracy") is not None:
        s = meta["summary"]
        low, high = (100 * x for x in s["ci95"])
        return f"accuracy {100 * s['accuracy']:.1f}% [{low:.1f}, {high:.1f}] of {s['judged']}"
    if outcome.type == "select" and "summary" in meta:
        return f"{meta['summary']['selected']} selected of {meta['summary']['instructions']} instructions"
    if outcome.type == "score" and "counts" in meta:
        return ", ".join(f"{k} {v}" for k, v in meta["counts"].items())
    return ""
