"""`grape pairs`: the command-line face of grape.selection.pairs."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, settings_from_args, table_output
from grape.console import console, print_table
from grape.selection.pairs import pairs
from grape.selection.settings import PairsSettings

FLAGS = ("chosen", "chosen_from", "rejected", "rejected_from", "min_margin", "seed")  # PairsSettings fields


EXAMPLES = """examples:
  grape pairs scores.parquet -o pairs.jsonl                     # best fit vs lowest fit
  grape pairs verified_scores.parquet -o pairs.jsonl --chosen-from correct --rejected-from incorrect
  grape pairs scores.parquet -o pairs.jsonl --chosen source:gpt-4 --rejected random --min-margin 0.1"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "pairs", help="chosen/rejected preference pairs per instruction (for DPO)",
        description="Make one chosen/rejected pair per instruction from a scores table (optionally verified) and "
        "write TRL's prompt/chosen/rejected rows with id, sources and scores; instructions left without a pair are "
        "listed in the sidecar with the reason. Settings: defaults < --config YAML < flags.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("scores", help="scores table written by `grape score` (after `grape verify` for correctness)")
    parser.add_argument("-o", "--output", required=True, type=table_output, help="pairs: .jsonl or .parquet")
    add_config_option(parser)
    parser.add_argument("--chosen", help="grape (best fit), random, source:NAME or priority:A,B,C. Default: grape")
    parser.add_argument(
        "--chosen-from", metavar="correct|all",
        help="candidates the chosen one is drawn from. Default: correct when the table has `correct` values, else all",
    )  # fmt: skip
    parser.add_argument("--rejected", metavar="lowest|random", help="lowest (worst fit) or random. Default: lowest")
    parser.add_argument(
        "--rejected-from", metavar="incorrect|rest",
        help="incorrect candidates, or the rest (every other scored candidate). Default: incorrect when the table "
        "has `correct` values, else rest",
    )  # fmt: skip
    parser.add_argument("--min-margin", type=float, help="keep a pair only if chosen fit - rejected fit >= this")
    parser.add_argument("--seed", type=int, help="seed of the random draws. Default: 0")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    _, summary = pairs(args.scores, args.output, settings_from_args(PairsSettings, args, FLAGS))
    print_pairs_summary(summary)
    console.print(f"pairs written to [bold]{args.output}[/]")
    return 0


def print_pairs_summary(summary: dict) -> None:
    dash = lambda v: "-" if v is None else v  # noqa: E731
    rows = [(source, s["candidates"], s["chosen"], s["rejected"], dash(s["chosen_mean_logprob"]),
             dash(s["rejected_mean_logprob"])) for source, s in summary["sources"].items()]  # fmt: skip
    title = (f"Pairs (chosen {summary['chosen']} from {summary['chosen_from']}, rejected {summary['rejected']} from "
             f"{summary['rejected_from']})")  # fmt: skip
    print_table(title, ["source", "candidates", "chosen", "rejected", "chosen logprob", "rejected logprob"], rows)
    console.print(
        f"{summary['instructions']} instructions, {summary['candidates_scored']}/{summary['candidates']} candidates "
        f"scored, {summary['pairs']} pairs; mean margin {summary['mean_margin']:.4f}, "
        f"{summary['pairs_with_negative_margin']} with the rejected one fitting better"
        if summary["pairs"] else "no pairs"
    )  # fmt: skip
    left = {reason: n for reason, n in summary["without_pair"].items() if n}
    if left:
        words = ", ".join(f"{n} {reason.replace('_', ' ')}" for reason, n in left.items())
        console.print(f"[yellow]without a pair: {words}[/] (listed in the sidecar)")
