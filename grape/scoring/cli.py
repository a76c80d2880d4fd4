"""`grape score`: the command-line face of grape.scoring.score."""

from __future__ import annotations

import argparse
from collections import defaultdict
from typing import TYPE_CHECKING

from rich.table import Table

from grape.cli_options import (
    add_config_option,
    add_input_options,
    add_model_options,
    positive_int,
    settings_from_args,
    table_output,
)
from grape.console import console, print_table
from grape.data.records import SCORED
from grape.errors import GrapeError
from grape.models.fused_kernels import KERNEL_KINDS
from grape.scoring.settings import ATTENTION_KINDS, DEVICE_DEFAULTS, ScoreSettings

if TYPE_CHECKING:
    from grape.scoring.dry_run import ScorePlan


EXAMPLES = """examples:
  grape score pool.jsonl -o scores.parquet --dry-run          # counts, too-long rows, an estimated time
  grape score pool.jsonl -o scores.parquet --model gemma-3-270m
  grape score model_outputs.json -o scores.parquet --layout long --template chat --model smollm2-135m-instruct"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "score", help="score every candidate response with the target model",
        description="Score every candidate with the target model: mean log-probability per response token. "
        "Writes one row per candidate (Parquet, or JSONL by extension) and a .meta.json sidecar.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument(
        "input", help="JSONL, JSON array, CSV, Parquet, a datasets dir or a Hub id (grouped or long layout)"
    )
    parser.add_argument(
        "-o", "--output", required=True, type=table_output, help="scores table: .parquet (default) or .jsonl"
    )
    add_model_options(parser)
    add_input_options(parser)
    add_config_option(parser)
    cpu, gpu = DEVICE_DEFAULTS["cpu"], DEVICE_DEFAULTS["cuda"]
    parser.add_argument(
        "--batch-tokens",
        type=positive_int,
        help=f"tokens per forward pass. Default: {cpu.batch_tokens} on CPU, {gpu.batch_tokens} on a GPU",
    )
    parser.add_argument(
        "--max-row-tokens",
        type=positive_int,
        help="instructions shorter than this share a packed row; longer ones are split, each piece repeating "
        f"the prompt. Default: {cpu.max_row_tokens} on CPU, {gpu.max_row_tokens} on a GPU",
    )
    parser.add_argument(
        "--attention",
        choices=ATTENTION_KINDS,
        help="segments: attention per prompt and per response; mask: one mask over each packed row (its square); "
        "flex: FlexAttention with a block mask (skips the blocks nobody sees; compiles its kernel on first use); "
        "varlen: two variable-length FlashAttention calls a layer, no mask (a GPU in bfloat16 / float16). "
        f"Default: {cpu.attention} on CPU, {gpu.attention} on a GPU",
    )
    parser.add_argument(
        "--kernels",
        choices=KERNEL_KINDS,
        help="liger: Liger's fused RMSNorm / SwiGLU / rotary kernels (a CUDA GPU, grape-fit[liger]); torch: the "
        "model's own code; auto: liger on a GPU where installed and not compiling. Default: auto",
    )
    parser.add_argument(
        "--compile",
        action="store_const",
        const=True,
        help="torch.compile the model first: on a GPU an 8B target scored 1.2x faster once compiled "
        "(docs/performance.md); compiling takes a minute or two, so it pays off on long jobs",
    )
    parser.add_argument(
        "--part-size", type=int, metavar="N",
        help="instructions per saved part: the work is saved every N instructions, and a re-run of the same "
        f"command resumes from the saved parts (in OUTPUT.parts/). Default: {ScoreSettings.part_size}",
    )  # fmt: skip
    parser.add_argument(
        "--limit", type=int, metavar="N",
        help="score only the first N instructions (a trial run; the whole input is still read and checked)",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true",
        help="write nothing: count instructions, candidates and tokens, rows too long for the model, what a re-run "
        "would reuse, and estimate the time (from this output's last run, else from about one batch timed now)",
    )  # fmt: skip
    parser.add_argument(
        "--no-measure", action="store_true",
        help="with --dry-run: do not load the model to time a batch when no earlier rate is recorded",
    )  # fmt: skip
    add_ray_options(parser)
    parser.set_defaults(run=run)


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("distributed scoring (Ray; see docs/distributed.md)")
    group.add_argument(
        "--ray", action="store_true",
        help="score as a Ray Data job on a pool of workers, one model replica each; same table, same resume",
    )  # fmt: skip
    group.add_argument(
        "--ray-address", default=None, metavar="ADDR",
        help="join a running Ray cluster ('auto', or HOST:PORT of its head); without it, Ray starts on this machine",
    )  # fmt: skip
    group.add_argument(
        "--workers", type=positive_int, default=None, metavar="N",
        help="scoring workers (model replicas). Default: one per GPU of the cluster, or 1 without GPUs",
    )  # fmt: skip
    group.add_argument(
        "--gpus-per-worker", type=float, default=None, metavar="G",
        help="GPUs per worker, at most 1 (a fraction packs several replicas of a small model on one GPU). "
        "Default: 1 when the cluster has GPUs, else 0",
    )  # fmt: skip


# ScoreSettings fields with a flag, and those of its engine (nested under `engine:` in a --config file).
FLAGS = ("model", "template", "eos", "dtype", "device", "on_error", "layout", "columns", "split", "subset", "revision",
         "trust_remote_code", "part_size", "limit")  # fmt: skip
ENGINE_FLAGS = ("batch_tokens", "max_row_tokens", "compile", "attention", "kernels")


def score_settings(args: argparse.Namespace) -> ScoreSettings:
    """Defaults < --config < flags, the engine's flags included."""
    args.engine = {name: getattr(args, name) for name in ENGINE_FLAGS if getattr(args, name) is not None} or None
    return settings_from_args(ScoreSettings, args, (*FLAGS, "engine"))


def run(args: argparse.Namespace) -> int:
    settings = score_settings(args)
    if args.no_measure and not args.dry_run:
        raise GrapeError("--no-measure goes with --dry-run")
    if args.dry_run:
        if args.ray:
            raise GrapeError("--dry-run plans a run in this process; drop --ray (the counts are the same)")
        from grape.scoring.dry_run import plan_score

        print_score_plan(plan_score(args.input, args.output, settings, measure=not args.no_measure), args.output)
        return 0
    if args.ray:
        from grape.scoring.distributed import RaySettings, score_on_ray

        cluster = RaySettings(args.ray_address, args.workers, args.gpus_per_worker)
        rows = score_on_ray(args.input, args.output, settings, cluster)
    elif args.ray_address or args.workers or args.gpus_per_worker is not None:
        raise GrapeError("--ray-address, --workers and --gpus-per-worker need --ray")
    else:
        from grape.scoring.score import score  # torch is imported only when there is work to do

        rows = score(args.input, args.output, settings)
    print_score_summary(rows)
    console.print(f"scores written to [bold]{args.output}[/]")
    return 0


def print_score_summary(rows: list[dict]) -> None:
    per_source: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        per_source[str(row["source"])].append(row)
    table = []
    for source, items in sorted(per_source.items()):
        scored = [r["mean_logprob"] for r in items if r["status"] == SCORED]
        mean = sum(scored) / len(scored) if scored else float("nan")
        table.append((source, len(items), len(scored), len(items) - len(scored), mean))
    print_table("Scores per source", ["source", "candidates", "scored", "skipped", "mean logprob/token"], table)
    skipped = defaultdict(int)
    for row in rows:
        if row["status"] != SCORED:
            skipped[row["status"]] += 1
    if skipped:
        console.print("skipped: " + ", ".join(f"{k.removeprefix('skipped:')} {v}" for k, v in sorted(skipped.items())))


def print_score_plan(plan: ScorePlan, output: str) -> None:
    """The dry run's answer: what a run would score, what it would skip, reuse, and how long it would take."""
    limited = (
        f" (the first {plan.instructions} of {plan.input_instructions})"
        if plan.instructions < plan.input_instructions
        else ""
    )
    skips = ", ".join(f"{status.removeprefix('skipped:')} {n:,}" for status, n in sorted(plan.skipped.items()))
    too_long = plan.skipped.get("skipped:too_long", 0)
    rows = [
        ("instructions", f"{plan.instructions:,}{limited}"),
        ("candidates", f"{plan.rows:,} rows: {plan.to_score:,} to score" + (f"; skipped: {skips}" if skips else "")),
        ("prompt tokens", f"{plan.prompt_tokens:,} (once per shared prompt; {plan.prompt_tokens_repeated:,} "
                          "if repeated for each candidate)"),
        ("response tokens", f"{plan.response_tokens:,}"),
        ("engine tokens", f"{plan.engine_tokens:,} (prompts once per packed piece, plus the responses)"),
        ("too long", f"{too_long:,} candidates over the model's {plan.context:,} tokens (status skipped:too_long; "
                     "--on-error fail stops at the first)"),
        ("saved work", plan.output_state),
        ("left to score", f"{plan.pending_instructions:,} instructions, {plan.pending_tokens:,} engine tokens"),
    ]  # fmt: skip
    if plan.rate is not None:
        rows.append(("rate", f"{plan.rate.tokens_per_second:,.0f} tokens/s on {plan.rate.device}: {plan.rate_source}"))
        left = plan.seconds_left
        rows.append(("estimate", "nothing to score" if left is None else f"{_duration(left)} of scoring, plus loading "
                     "the model"))  # fmt: skip
    else:
        rows.append(("estimate", f"none: {plan.rate_source}"))
    rows.insert(0, ("output file", f"{output} (a dry run: nothing written)"))
    table = Table(title="grape score --dry-run", title_justify="left", show_header=False)
    for value in rows:
        table.add_row(*value)
    console.print(table)
    if plan.first_problem:
        console.print(f"[yellow]with --on-error fail the run stops at:[/] {plan.first_problem} (--on-error skip "
                      "keeps such rows with their status)", highlight=False)  # fmt: skip
    if plan.warning:
        console.print(f"[yellow]warning:[/] {plan.warning}", highlight=False)


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"about {seconds:.0f} s"
    if seconds < 2 * 3600:
        return f"about {seconds / 60:.0f} min"
    return f"about {seconds / 3600:.1f} h"
