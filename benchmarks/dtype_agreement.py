"""How far bfloat16 moves the scores, and how often it changes the selected candidate, on real text.

    .venv/bin/python benchmarks/dtype_agreement.py --instructions 120

Scores the first N AlpacaEval instructions (15 generators each, ../shared/data/alpaca_eval) with the target
in float32 and in bfloat16, then reports |Δ mean_logprob| per candidate and the share of instructions whose
GRAPE choice differs between the two. This decides the default dtype (docs/performance.md).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from grape.evaluation.metrics import wilson_interval
from grape.scoring.score import ScoreSettings, score
from grape.selection.select import select

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_eval" / "model_outputs.jsonl"


def subset(path: Path, n: int, max_chars: int, skip: int, out: Path) -> Path:
    """Instructions skip+1 .. skip+n (in file order) with all their candidates (responses cut at
    max_chars to bound the cost), written to ``out``."""
    seen: dict[str, int] = {}
    with path.open() as source, out.open("w") as sink:
        for line in source:
            row = json.loads(line)
            if row["instruction"] not in seen and len(seen) == skip + n:
                continue
            index = seen.setdefault(row["instruction"], len(seen))
            if index >= skip:
                row["output"] = row["output"][:max_chars]
                sink.write(json.dumps(row) + "\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--instructions", type=int, default=120)
    parser.add_argument("--max-chars", type=int, default=1500, help="cut responses here (cost bound)")
    parser.add_argument("--skip", type=int, default=0, help="start after this many instructions (a fresh sample)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
    parser.add_argument("--output", default=None, help="write the figures as JSON here")
    parser.add_argument(
        "--work",
        default=None,
        help="keep the subset and both score tables here: a stopped run resumes from its saved parts",
    )
    args = parser.parse_args()
    if not DATA.is_file():
        raise SystemExit(f"{DATA} is absent: this benchmark needs the shared AlpacaEval outputs")
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp())
    work.mkdir(parents=True, exist_ok=True)
    path = subset(DATA, args.instructions, args.max_chars, args.skip, work / "subset.jsonl")
    runs, seconds = {}, {}
    for dtype in ("float32", "bfloat16"):
        started = time.perf_counter()
        settings = ScoreSettings(model=args.model, dtype=dtype, device="cpu", on_error="skip", part_size=20)
        runs[dtype] = score(path, work / f"{dtype}.parquet", settings)
        seconds[dtype] = time.perf_counter() - started  # of this process: less than the whole on a resumed run
    exact, low = runs["float32"], runs["bfloat16"]
    pairs = [(a, b) for a, b in zip(exact, low, strict=True) if a["status"] == "scored"]
    delta = np.array([abs(a["mean_logprob"] - b["mean_logprob"]) for a, b in pairs])
    choice = {dtype: {c["id"]: c["candidate"] for c in select(rows)[0]} for dtype, rows in runs.items()}
    flipped = [i for i in choice["float32"] if choice["float32"][i] != choice["bfloat16"].get(i)]
    flips = len(flipped)
    margins = defaultdict(list)
    for row in exact:
        if row["status"] == "scored":
            margins[row["id"]].append(row["mean_logprob"])
    gaps = np.array([sorted(v)[-1] - sorted(v)[-2] for v in margins.values() if len(v) > 1])
    result = {
        "model": args.model, "instructions": len(choice["float32"]), "candidates": len(pairs),
        "mean_abs_delta": float(delta.mean()), "p99_abs_delta": float(np.quantile(delta, 0.99)),
        "max_abs_delta": float(delta.max()), "selection_flips": int(flips),
        "flip_share": flips / max(len(choice["float32"]), 1),
        "flip_share_95ci": wilson_interval(flips, len(choice["float32"])), "flipped_ids": flipped,
        "median_best_margin_fp32": float(np.median(gaps)), "seconds": seconds,
    }  # fmt: skip
    print(json.dumps(result, indent=2))
    if args.output:
        Path(args.output).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
