"""`grape select`: the command-line face of grape.selection.select."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, settings_from_args, table_output
from grape.console import console, print_table
from grape.selection.select import select
from grape.selection.settings import FORMATS, SelectSettings
from grape.selection.strategies import STRATEGIES

FLAGS = ("strategy", "top_k", "format", "require_correct", "seed")  # SelectSettings fields with a flag


EXAMPLES = """examples:
  grape select scores.parquet -o selected.jsonl                 # best fit per instruction
  grape select verified_scores.parquet -o selected.jsonl --require-correct
  grape select scores.parquet -o s3ft.jsonl --strategy priority:self,paraphrase,reference --require-correct"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "select", help="choose the best-fitting candidate(s) per instruction",
        description="Choose candidates per instruction from a scores table and write an SFT dataset in TRL's "
        "formats; every row carries id, source and score. Settings: defaults < --config YAML < flags.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("scores", help="scores table written by `grape score`")
    parser.add_argument("-o", "--output", required=True, type=table_output, help="selection: .jsonl or .parquet")
    add_config_option(parser)
    parser.add_argument(
        "--strategy",
        help=f"one of {', '.join(STRATEGIES)}, source:NAME or priority:A,B,C. grape = highest mean log-prob "
        "(best fit); lowest = the paper's ablation; random is seeded; all = every scored candidate; priority = "
        "the first listed source with an eligible candidate, best fit first (S3FT). Default: grape",
    )  # fmt: skip
    parser.add_argument("--top-k", type=int, help="candidates kept per instruction. Default: 1")
    parser.add_argument("--format", choices=FORMATS, help="TRL dataset format. Default: prompt-completion")
    parser.add_argument(
        "--require-correct", action="store_const", const=True,
        help="keep only candidates verified correct (needs a `correct` column)",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, help="seed of the random strategy. Default: 0")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    _, summary = select(args.scores, args.output, settings_from_args(SelectSettings, args, FLAGS))
    print_select_summary(summary)
    console.print(f"selection written to [bold]{args.output}[/]")
    return 0


def print_select_summary(summary: dict) -> None:
    rows = [(source, s["candidates"], s["chosen"], f"{100 * s['chosen_share']:.1f}%", s["mean_logprob"],
             s["chosen_mean_logprob"] if s["chosen"] else "-") for source, s in summary["sources"].items()]  # fmt: skip
    print_table(f"Selection ({summary['strategy']})",
                ["source", "candidates", "chosen", "share", "mean logprob", "chosen mean logprob"], rows)  # fmt: skip
    console.print(
        f"{summary['instructions']} instructions, {summary['candidates_scored']}/{summary['candidates']} candidates "
        f"scored, {summary['selected']} selected; mean logprob/token selected {summary['mean_logprob_selected']:.4f} "
        f"vs all {summary['mean_logprob_all']:.4f}"
        if summary["selected"] else "nothing selected"
    )  # fmt: skip
    if summary["instructions_without_candidate"]:
        console.print(f"[yellow]{summary['instructions_without_candidate']} instructions had no eligible candidate[/]"
                      " (listed in the sidecar)")  # fmt: skip
