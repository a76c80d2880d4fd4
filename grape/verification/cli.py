"""`grape verify`: the command-line face of grape.verification.verify."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, add_input_options, positive_int, settings_from_args, table_output
from grape.console import console, print_table
from grape.data.pool import SKIP_KEY
from grape.verification.registry import NAMES
from grape.verification.settings import VerifySettings
from grape.verification.verify import verify

FLAGS = ("verifier", "workers", "unsafe_sandbox", "sandbox_timeout", "sandbox_memory_mb", "limit", "layout", "columns",
         "split", "subset", "revision", "on_error")  # fmt: skip


EXAMPLES = """examples:
  grape verify pool.jsonl -o verified.jsonl --verifier math
  grape verify pool.jsonl -o verified.jsonl --verifier code --sandbox-timeout 5 --sandbox-memory-mb 512
  grape verify pool.jsonl -o first.jsonl --verifier math --limit 20"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="mark each candidate correct, incorrect or unknown",
        description="Add `correct` (true/false/null) and `verify_reason` to every candidate (grouped layout out). "
        "`grape score` carries `correct` into the scores table; `grape select --require-correct` uses it.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument(
        "input", help="candidates, grouped or long: .jsonl, .json, .csv, .parquet, a datasets dir or a Hub id"
    )
    parser.add_argument(
        "-o", "--output", required=True, type=table_output, help="verified candidates: .jsonl (or .parquet)"
    )
    parser.add_argument(
        "--verifier",
        help=f"one of {', '.join(NAMES)}. math: the final answer vs the item's `answer` as expressions, by "
        "math-verify (\\boxed{} first, then GSM8K ####, 'the answer is', else the last expression; a check over "
        "10 s is unknown); number: the final number, exactly (GSM8K ####, 'the answer is', \\boxed{}, else the "
        "last number; unknown when the gold is not a plain number); number-stated: the same without the last-number "
        "fallback (ReFT's extraction); exact: the whole response vs `answer`; "
        "regex: found in the "
        "response (a group named `answer` must equal `answer`); code: run the response against the item's "
        "`tests` (or test_list / test + entry_point) in a sandbox; python:module:function: your own. Default: math",
    )  # fmt: skip
    parser.add_argument(
        "--workers",
        type=positive_int,
        help="candidates checked at once. Default: CPU count for code (max 8), else 1",
    )
    parser.add_argument(
        "--unsafe-sandbox", action="store_const", const=True,
        help="code verifier: where no sandbox wall can be built (no user namespaces, no bwrap), run candidates "
        "with the in-process guard anyway. It is no wall against hostile code (docs/security.md)",
    )  # fmt: skip
    parser.add_argument(
        "--sandbox-timeout", type=float, metavar="SECONDS",
        help="code verifier: wall-clock seconds per check, after which the sandbox is killed (CPU time: this + 1). "
        "Default: 10",
    )  # fmt: skip
    parser.add_argument(
        "--sandbox-memory-mb", type=int, metavar="MB",
        help="code verifier: address space per check, in MB (more than the resident memory). Default: 1024",
    )  # fmt: skip
    parser.add_argument(
        "--limit", type=int, metavar="N",
        help="verify only the first N instructions (a trial run; the whole input is still read and checked)",
    )  # fmt: skip
    add_input_options(parser)
    add_config_option(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(VerifySettings, args, FLAGS)
    verified, counts = verify(args.input, args.output, settings)
    rows = [
        (source, c.correct, c.incorrect, c.unknown, f"{100 * c.correct / max(c.correct + c.incorrect, 1):.1f}%")
        for source, c in sorted(counts.items())
    ]
    print_table(f"Verification ({settings.verifier})", ["source", "correct", "incorrect", "unknown", "accuracy"], rows)
    reasons: dict[str, int] = {}
    for c in counts.values():
        for kind, n in c.reasons.items():
            reasons[kind] = reasons.get(kind, 0) + n
    if reasons:
        top = sorted(reasons.items(), key=lambda kv: -kv[1])[:5]
        console.print("incorrect because: " + ", ".join(f"{k} ({n})" for k, n in top), highlight=False)
    skipped = [row for row in verified if row.get(SKIP_KEY)]
    if skipped:  # --on-error skip: kept in the output as given, with their reason, and not judged
        first = skipped[0]
        console.print(f"{len(skipped)} row(s) skipped, not judged (first: id {first['id']!r}, "
                      f"{first[SKIP_KEY].replace('_', ' ')}); they are in the output with `{SKIP_KEY}`",
                      highlight=False, markup=False)  # fmt: skip
    console.print(f"verified candidates written to [bold]{args.output}[/]")
    return 0
