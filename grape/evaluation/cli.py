"""`grape eval`: the command-line face of grape.evaluation.evaluate."""

from __future__ import annotations

import argparse
from pathlib import Path

from grape.config import load_settings
from grape.console import console, print_table
from grape.data.layout import Columns
from grape.evaluation.settings import EvalSettings
from grape.models.dtypes import ACCEPTED
from grape.verification.registry import NAMES

# EvalSettings fields with a flag; flags default to None so that --config values stand unless given.
FLAGS = ("model", "template", "verifier", "max_new_tokens", "batch_size", "stop", "limit", "dtype", "device")


def register(subparsers) -> None:
    defaults = EvalSettings()
    parser = subparsers.add_parser(
        "eval", help="greedy answers + verifier: accuracy with a 95%% interval, per-example output",
        description="Answer every item greedily (batched), judge each answer with a verifier against the item's "
        "`answer` (or tests), and report accuracy with a 95% Wilson interval. Prompts use the training template. "
        "Writes one row per item (response, correct, reason) and a .meta.json sidecar with the summary.",
    )  # fmt: skip
    parser.add_argument("--data", required=True, help="items: JSONL/Parquet with a prompt (or question) and answer")
    parser.add_argument("-o", "--output", help="per-example output (.jsonl). Default: <data stem>.eval.jsonl")
    parser.add_argument("--config", help="YAML file of settings (EvalSettings keys); flags win over it")
    parser.add_argument("--model", help=f"model to evaluate, e.g. an OUTDIR of grape sft. Default: {defaults.model}")
    parser.add_argument("--template", help="prompt template the model was trained with. Default: paper")
    parser.add_argument("--verifier", help=f"one of {', '.join(NAMES)}. Default: {defaults.verifier}")
    parser.add_argument("--max-new-tokens", type=int, help=f"Default: {defaults.max_new_tokens}")
    parser.add_argument("--batch-size", type=int, help=f"prompts per generate call. Default: {defaults.batch_size}")
    parser.add_argument("--stop", action="append", help="stop string (repeatable). Default with paper: \\nQuestion:")
    parser.add_argument("--limit", type=int, help="evaluate the first N items only")
    parser.add_argument("--columns", metavar="NAME=COL,...", help="map columns, e.g. 'prompt=question,answer=gold'")
    parser.add_argument("--dtype", choices=ACCEPTED, help="Default: auto")
    parser.add_argument("--device", help="auto, cpu or cuda. Default: auto")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    overrides = {name: getattr(args, name) for name in FLAGS}
    if args.columns:
        overrides["columns"] = Columns.parse(args.columns)
    settings = load_settings(EvalSettings, args.config, overrides)
    output = args.output or f"{Path(args.data).stem}.eval.jsonl"
    from grape.evaluation.evaluate import evaluate

    _, summary = evaluate(args.data, output, settings)
    print_eval_summary(summary, settings.verifier)
    console.print(f"per-example results written to [bold]{output}[/]")
    return 0


def print_eval_summary(summary: dict, verifier: str) -> None:
    accuracy = summary["accuracy"]
    low, high = summary["ci95"]
    shown = "n/a" if accuracy is None else f"{100 * accuracy:.1f}%"
    print_table(
        f"Evaluation ({verifier})",
        ["items", "judged", "correct", "accuracy", "95% CI", "mean tokens", "seconds"],
        [(summary["items"], summary["judged"], summary["correct"], shown, f"{100 * low:.1f}–{100 * high:.1f}%",
          f"{summary['mean_response_tokens']:.0f}", summary["seconds"])],
    )  # fmt: skip
