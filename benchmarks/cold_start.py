"""The cold-start tax: the first scoring call in a fresh process against later calls in the same process.

    .venv/bin/python benchmarks/cold_start.py --processes 5

Each fresh process loads the target (not timed), then scores the same job three times with grape's
public `score()`: 6 AlpacaEval instructions x their first 4 generators' answers, cut at 300 characters
(24 candidates, ~64 tokens each). Per process it records the three calls' seconds and the ratio
first / median(second, third); across processes, the median and range of that ratio and the 1-minute
load average before each process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import load_average
from real_groups import alpaca_rows


def child(model: str, dtype: str, job: Path) -> None:
    from grape.models.load import load_model
    from grape.scoring.score import ScoreSettings, score

    loaded = load_model(model, dtype=dtype, device="cpu")
    settings = ScoreSettings(model=model, dtype=dtype, device="cpu")
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        rows = score(job, None, settings, loaded=loaded)
        seconds.append(time.perf_counter() - started)
    tokens = sum(r["n_tokens"] for r in rows)
    print(json.dumps({"seconds": seconds, "response_tokens": tokens}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--processes", type=int, default=5)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--json", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.model, args.dtype, Path(args.child))
    job = Path(tempfile.mkdtemp()) / "job.jsonl"
    with job.open("w") as out:
        for i, (instruction, answers) in enumerate(alpaca_rows(6, max_chars=300)):
            out.write(json.dumps({"id": str(i), "prompt": instruction, "candidates": answers[:4]}) + "\n")
    runs = []
    for p in range(args.processes):
        load = load_average()
        command = [sys.executable, __file__, "--child", str(job), "--model", args.model, "--dtype", args.dtype]
        result = json.loads(subprocess.run(command, capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        first, *warm = result["seconds"]
        result.update(load=load, ratio=first / statistics.median(warm))
        runs.append(result)
        print(f"process {p + 1}: load {load:.2f}, calls " + ", ".join(f"{s:.2f} s" for s in result["seconds"])
              + f", first / warm {result['ratio']:.2f}", flush=True)  # fmt: skip
    ratios = [r["ratio"] for r in runs]
    print(f"first / warm: median {statistics.median(ratios):.2f} (range {min(ratios):.2f}-{max(ratios):.2f}) over "
          f"{len(runs)} fresh processes, {runs[0]['response_tokens']} response tokens per call; load after "
          f"{load_average():.2f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": runs, "model": args.model, "dtype": args.dtype}, indent=2))


if __name__ == "__main__":
    main()
