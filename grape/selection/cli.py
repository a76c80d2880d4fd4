"""`grape select`: the command-line face of grape.selection.select."""

from __future__ import annotations

import argparse

from grape.console import console, print_table
from grape.selection.select import FORMATS, select
from grape.selection.strategies import STRATEGIES


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "select", help="choose the best-fitting candidate(s) per instruction",
        description="Choose candidates per instruction from a scores table and write an SFT dataset in TRL's "
        "formats; every row carries id, source and score.",
    )  # fmt: skip
    parser.add_argument("scores", help="scores table written by `grape score`")
    parser.add_argument("-o", "--output", required=True, help="selection: .jsonl or .parquet")
    parser.add_argument(
        "--strategy", default="grape",
        help=f"one of {', '.join(STRATEGIES)}, or source:NAME. grape = highest mean log-prob (best fit); "
        "lowest = the paper's ablation; random is seeded; all = every scored candidate. Default: grape",
    )  # fmt: skip
    parser.add_argument("--top-k", type=int, default=1, help="candidates kept per instruction. Default: 1")
    parser.add_argument(
        "--format", default="prompt-completion", choices=FORMATS, help="TRL dataset format. Default: prompt-completion"
    )
    parser.add_argument(
        "--require-correct",
        action="store_true",
        help="keep only candidates verified correct (needs a `correct` column)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random strategy. Default: 0")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    _, summary = select(args.scores, args.output, args.strategy, args.top_k, args.format,
                        args.require_correct, args.seed)  # fmt: skip
    print_select_summary(summary)
    console.print(f"selection written to [bold]{args.output}[/]")
    return 0


def print_select_summary(summary: dict) -> None:
    rows = [(source, s["candidates"], s["chosen"], f"{100 * s['chosen_share']:.1f}%", s["mean_logprob"])
            for source, s in summary["sources"].items()]  # fmt: skip
    print_table(f"Selection ({summary['strategy']})", ["source", "candidates", "chosen", "share", "mean logprob"],
                rows)  # fmt: skip
    console.print(
        f"{summary['instructions']} instructions, {summary['candidates_scored']}/{summary['candidates']} candidates "
        f"scored, {summary['selected']} selected; mean logprob/token selected {summary['mean_logprob_selected']:.4f} "
        f"vs all {summary['mean_logprob_all']:.4f}"
        if summary["selected"] else "nothing selected"
    )  # fmt: skip
    if summary["instructions_without_candidate"]:
        console.print(f"[yellow]{summary['instructions_without_candidate']} instructions had no eligible candidate[/]"
                      " (listed in the sidecar)")  # fmt: skip
