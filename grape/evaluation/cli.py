"""`grape eval`: the command-line face of grape.evaluation.evaluate."""

from __future__ import annotations

import argparse
from pathlib import Path

from grape.cli_options import positive_int
from grape.config import load_settings
from grape.console import console, print_table
from grape.data.layout import Columns
from grape.errors import GrapeError
from grape.evaluation.settings import HARNESSES, EvalSettings, HarnessSettings
from grape.generation.backend import BATCHING
from grape.models.dtypes import ACCEPTED
from grape.models.trained_template import template_for_model
from grape.verification.registry import NAMES

# EvalSettings fields with a flag; flags default to None so that --config values stand unless given.
FLAGS = (
    "model",
    "template",
    "verifier",
    "max_new_tokens",
    "batch_size",
    "batching",
    "stop",
    "limit",
    "decode",
    "dtype",
    "device",
)
# With --harness: the HarnessSettings fields with a flag, and the flags of grape's own evaluation that do not apply.
HARNESS_FLAGS = ("model", "template", "num_fewshot", "limit", "dtype", "device", "include_path")
OWN_EVAL_ONLY = ("data", "verifier", "max_new_tokens", "batching", "stop", "columns", "decode")


def register(subparsers) -> None:
    defaults = EvalSettings()
    parser = subparsers.add_parser(
        "eval", help="greedy answers + verifier: accuracy with a 95%% interval, per-example output",
        description="Answer every item greedily (batched), judge each answer with a verifier against the item's "
        "`answer` (or tests), and report accuracy with a 95% Wilson interval. Prompts use the training template. "
        "Writes one row per item (response, correct, reason) and a .meta.json sidecar with the summary. "
        "With --harness lm-eval --tasks ...: hands the model to EleutherAI's lm-evaluation-harness instead, for "
        "numbers comparable with published ones (its task prompts and metrics), and prints the equivalent "
        "lm_eval command; without lm-eval installed, prints that command and how to install it.",
        epilog="examples:\n"
        "  grape eval --model runs/sft --data heldout.jsonl --verifier math\n"
        "  grape eval --model runs/sft --data heldout.jsonl --decode tq.yaml      # reward-guided (grape decode)\n"
        "  grape eval --harness lm-eval --tasks gsm8k --model runs/sft           # lm-eval's GSM8K (5-shot)\n"
        "  grape eval --harness lm-eval --tasks gsm8k --model runs/sft --limit 50 --template chat",
    )  # fmt: skip
    parser.add_argument("--data", help="items: JSONL/Parquet with a prompt (or question) and answer")
    parser.add_argument(
        "-o", "--output", help="per-example output (.jsonl). Default: <data stem>.eval.jsonl; with --harness: "
        "lm-eval's results (.json). Default: lm-eval-<tasks>.json",
    )  # fmt: skip
    parser.add_argument(
        "--config", help="YAML file of settings (EvalSettings keys; HarnessSettings with --harness); flags win over it"
    )
    parser.add_argument("--model", help=f"model to evaluate, e.g. an OUTDIR of grape sft. Default: {defaults.model}")
    parser.add_argument("--template", help="prompt template. Default: the one grape trained the model with (its "
                        "grape-sft.yaml, grape-dpo.yaml or grape-rl.yaml), else paper")  # fmt: skip
    parser.add_argument("--verifier", help=f"one of {', '.join(NAMES)}. Default: {defaults.verifier}")
    parser.add_argument("--max-new-tokens", type=positive_int, help=f"Default: {defaults.max_new_tokens}")
    parser.add_argument(
        "--batch-size", type=positive_int,
        help=f"prompts per generate call. Default: {defaults.batch_size}; with --harness: auto (lm-eval finds one)",
    )  # fmt: skip
    parser.add_argument("--batching", choices=BATCHING, help="continuous: a finished answer's slot takes the next "
                        "prompt at once; static: a batch runs to its longest answer. Default: auto (continuous on a "
                        "CPU when the model's KV cache allows it)")  # fmt: skip
    parser.add_argument("--stop", action="append", help="stop string (repeatable). Default with paper: \\nQuestion:")
    parser.add_argument("--limit", type=int, help="evaluate the first N items only")
    parser.add_argument("--decode", metavar="YAML", help="answer with the reward-guided decoder of this `grape decode` "
                        "settings file (method, baseline, reward, ...) instead of greedily")  # fmt: skip
    parser.add_argument("--columns", metavar="NAME=COL,...", help="map columns, e.g. 'prompt=question,answer=gold'")
    parser.add_argument("--dtype", choices=ACCEPTED, help="Default: auto")
    parser.add_argument("--device", help="auto, cpu or cuda. Default: auto")
    harness = parser.add_argument_group("lm-evaluation-harness (comparable numbers; pip install 'grape-fit[harness]')")
    harness.add_argument("--harness", choices=HARNESSES, help="evaluate with this harness instead of grape's verifiers")
    harness.add_argument(
        "--tasks", nargs="+", metavar="TASK", help="lm-eval tasks, e.g. gsm8k (space or comma separated)"
    )
    harness.add_argument("--num-fewshot", type=int, help="examples in each prompt. Default: the task's (gsm8k: 5)")
    harness.add_argument("--include-path", metavar="DIR", help="a folder of further lm-eval task YAML files")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.harness:
        return run_harness(args)
    if not args.data:
        raise GrapeError("give the items to evaluate: --data FILE (or --harness lm-eval --tasks NAME)")
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


def run_harness(args: argparse.Namespace) -> int:
    """`grape eval --harness lm-eval`: run lm-eval here when installed; else print its command and the install line."""
    from grape.evaluation.harness import INSTALL, lm_eval_command, lm_eval_installed, metric_rows, run_lm_eval

    given = [f"--{name.replace('_', '-')}" for name in OWN_EVAL_ONLY if getattr(args, name)]
    if given:
        raise GrapeError(f"{', '.join(given)}: grape's own evaluation only; lm-eval's tasks bring their items")
    overrides = {name: getattr(args, name) for name in HARNESS_FLAGS}
    overrides["tasks"] = [t for entry in args.tasks or [] for t in entry.split(",") if t] or None
    overrides["batch_size"] = None if args.batch_size is None else str(args.batch_size)
    settings = load_settings(HarnessSettings, args.config, overrides)
    settings.template = template_for_model(settings.model, settings.template)
    command = lm_eval_command(settings)
    if not lm_eval_installed():
        console.print(f"lm-eval is not installed: {INSTALL}, then run this again; or run the same evaluation with "
                      "lm-eval's own command:", markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        print(command)  # stdout, whole, to copy or pipe
        return 1
    console.print(f"the same evaluation with lm-eval's own command:\n  {command}", markup=False, highlight=False,
                  soft_wrap=True)  # fmt: skip
    output = args.output or f"lm-eval-{'-'.join(settings.tasks)}.json"
    rows = metric_rows(run_lm_eval(output, settings))
    print_table(
        f"lm-eval ({settings.model})",
        ["task", "metric", "filter", "value", "± stderr", "samples"],
        [(r["task"], r["metric"], r["filter"], f"{r['value']:.4f}",
          "" if r["stderr"] is None else f"{r['stderr']:.4f}", r["samples"] or "") for r in rows],
    )  # fmt: skip
    console.print(f"results written to [bold]{output}[/]", soft_wrap=True)
    return 0
