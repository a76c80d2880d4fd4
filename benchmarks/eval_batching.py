"""`grape eval`'s greedy answers in static batches against continuous batching, in one process.

  .venv/bin/python benchmarks/eval_batching.py --items 48 --rounds 3 --threads 1

Each round answers the same SVAMP test questions (../shared/data/svamp/test.jsonl, the first --items) with
smollm2-135m-instruct (chat template, greedy, up to --max-new-tokens) both ways, in an order that rotates from
round to round; the ratio is taken within each round. Also reported: how many answers are token-identical
between the two ways (float32: a different batch may round a near-tie the other way) and the answer tokens.

With ``--against cat`` the baseline is continuous batching with transformers' own cache layers, which grow by
copying the whole cache at every step (``torch.cat``), instead of static batches: the continuous loop's
`with_room` (grape.models.padded_cache) is bypassed for that way only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path

import torch
from round_stats import per_round_ratios, ratio_refusal, rotated_order, spread_of

import grape.generation.continuous as continuous
from grape.evaluation.evaluate import generate_answers
from grape.evaluation.settings import EvalSettings
from grape.models.load import load_model

SVAMP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "svamp" / "test.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--items", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--against", choices=("static", "cat"), default="static",
                        help="the baseline: static batches, or continuous with a cache grown by torch.cat")  # fmt: skip
    args = parser.parse_args()
    if not SVAMP.is_file():
        sys.exit(f"{SVAMP} is not there: this benchmark reads SVAMP's test questions")
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, "float32", "cpu")
    questions = [json.loads(line)["question"] for line in SVAMP.read_text().splitlines()[: args.items]]
    load_before = os.getloadavg()
    baseline = "static" if args.against == "static" else "continuous-cat"
    seconds: dict[str, list[float]] = {baseline: [], "continuous": []}
    answers: dict[str, list] = {}
    for round_index in range(args.rounds):
        for batching in rotated_order(list(seconds), round_index):
            settings = EvalSettings(model=args.model, template="chat", max_new_tokens=args.max_new_tokens,
                                    batch_size=args.batch_size, batching=batching.split("-")[0], stop=[])  # fmt: skip
            start = time.perf_counter()
            with _cat_grown() if batching == "continuous-cat" else contextlib.nullcontext():
                answers[batching] = generate_answers(loaded, questions, settings)
            seconds[batching].append(time.perf_counter() - start)
            print(json.dumps({"round": round_index, "batching": batching, "seconds": seconds[batching][-1],
                              "load_average": os.getloadavg()}), file=sys.stderr, flush=True)  # fmt: skip
    ratios = per_round_ratios(seconds[baseline], seconds["continuous"])
    spreads = [spread_of(ratios), spread_of(seconds[baseline]), spread_of(seconds["continuous"])]
    same = sum(a[0] == b[0] for a, b in zip(answers[baseline], answers["continuous"], strict=True))
    print(json.dumps({
        "model": args.model, "items": args.items, "batch_size": args.batch_size, "threads": args.threads,
        "max_new_tokens": args.max_new_tokens, "answer_tokens": sum(a[1] for a in answers[baseline]),
        "seconds": {k: spread_of(v).as_dict() for k, v in seconds.items()},
        "speed_up": spread_of(ratios).as_dict(), "refused": ratio_refusal(spreads),
        "identical_answers": same, "load_average_before": load_before, "load_average_after": os.getloadavg(),
        "cpus": os.cpu_count(), "torch": torch.__version__,
    }, indent=1))  # fmt: skip


@contextlib.contextmanager
def _cat_grown():
    """The continuous loop with transformers' cache layers as they are (grown by torch.cat at every step)."""
    kept, continuous.with_room = continuous.with_room, lambda cache: cache
    try:
        yield
    finally:
        continuous.with_room = kept


if __name__ == "__main__":
    main()
