"""The RL sampler's KV cache written in place (RoomyLayer) against transformers' cache grown by torch.cat, in one
process, interleaved.

    .venv/bin/python benchmarks/rollout_cache.py --rounds 5            # smollm2-135m-instruct, 8 SVAMP prompts

Each round samples one batch of --batch-size SVAMP questions (the paper template, temperature 1, up to
--max-new-tokens, the sampler seeded the same for both ways, so both sample the same tokens and do the same
work) once each way, in an order that rotates from round to round; each round takes the next questions. It
prints per-way seconds, the per-round ratio cat / in place (median, spread), whether the two sampled the same
tokens, and the load average before and after (JSON).
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

from grape.models.load import load_model
from grape.rl import rollout
from grape.rl.prompts import read_questions, stop_ids
from grape.text import Renderer

SVAMP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "svamp" / "train_nl.jsonl"


@contextlib.contextmanager
def cat_grown():
    """The sampler with transformers' cache layers as they are (each step copies the whole cache: torch.cat)."""
    kept, rollout.with_room = rollout.with_room, lambda cache: cache
    try:
        yield
    finally:
        rollout.with_room = kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=300, help="RLSettings' default")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    if not SVAMP.is_file():
        sys.exit(f"{SVAMP} is not there: this benchmark reads SVAMP's training questions")
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, dtype="float32", device="cpu")
    renderer = Renderer(loaded.tokenizer, "paper")
    questions = read_questions(SVAMP, renderer, "question", "answer_value", 512)
    stops = stop_ids(renderer, loaded.tokenizer)
    load_before = os.getloadavg()
    seconds: dict[str, list[float]] = {"cat": [], "in_place": []}
    tokens, same = [], []
    for r in range(args.rounds):
        batch = questions[r * args.batch_size : (r + 1) * args.batch_size]
        sampled = {}
        for way in rotated_order(list(seconds), r):
            start = time.perf_counter()
            with cat_grown() if way == "cat" else contextlib.nullcontext():
                sampled[way] = rollout.sample_rollouts(
                    loaded.model, [q.prompt_ids for q in batch], max_new_tokens=args.max_new_tokens, stop_ids=stops,
                    pad_id=loaded.tokenizer.pad_token_id, generator=torch.Generator().manual_seed(r),
                )  # fmt: skip
            seconds[way].append(time.perf_counter() - start)
        tokens.append(int(sampled["in_place"].response_mask.sum()))
        same.append(torch.equal(sampled["cat"].response_ids, sampled["in_place"].response_ids))
        print(json.dumps({"round": r, **{w: s[-1] for w, s in seconds.items()}, "answer_tokens": tokens[-1],
                          "steps": sampled["in_place"].response_ids.shape[1], "same_tokens": same[-1],
                          "load_average": os.getloadavg()}), file=sys.stderr, flush=True)  # fmt: skip
    ratios = per_round_ratios(seconds["cat"], seconds["in_place"])
    spreads = [spread_of(ratios), spread_of(seconds["cat"]), spread_of(seconds["in_place"])]
    record = {
        "model": args.model, "batch_size": args.batch_size, "max_new_tokens": args.max_new_tokens,
        "threads": args.threads, "answer_tokens": tokens, "same_tokens": same,
        "seconds": {k: spread_of(v).as_dict() for k, v in seconds.items()},
        "speed_up": spread_of(ratios).as_dict(), "per_round": ratios, "refused": ratio_refusal(spreads),
        "load_average_before": load_before, "load_average_after": os.getloadavg(), "cpus": os.cpu_count(),
        "torch": torch.__version__, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }  # fmt: skip
    print(json.dumps(record, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
