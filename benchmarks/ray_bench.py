"""Single-process scoring against Ray with 1 and 2 workers, on this machine, on the same data.

    .venv/bin/python benchmarks/ray_bench.py                  # gemma-3-270m, 32 GSM8K problems x 4 solutions
    .venv/bin/python benchmarks/ray_bench.py --instructions 96 --part-size 8 --repeats 3

Data: the first N problems of ../shared/data/gsm8k/example_model_solutions.jsonl, each with its four
model solutions as candidates (a real multi-model pool). Every run starts from an empty output, so
nothing is resumed. Each figure is end to end as a user meets it, less Python's start-up:

  single     `grape score`: load the model, score, save parts, write the table;
  ray-N      `grape score --ray --workers N`: the same, with N actors that each load the model (the
             local Ray cluster itself is started once, before, and timed apart).

Runs are interleaved (single, ray-1, ray-2, ray-2, ray-1, single, ...) and the fastest of each kind is
reported, since other jobs on a shared machine come and go; the load average is printed with them.
Per kind: wall seconds, candidates/s and tokens/s (each prompt once plus every response: what the
engine computes), the scoring seconds alone (the single process's wall less its model load; each Ray
worker's busy time), the CPU seconds the run used in all processes (the figure that other jobs on
the machine do not distort), and the largest |Δ mean_logprob| against the single-process table (0:
bit for bit).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "example_model_solutions.jsonl"
SOURCES = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def write_pool(path: Path, n: int) -> Path:
    if not SHARED.is_file():
        sys.exit(f"{SHARED} is absent: this benchmark reads the shared public data beside the project")
    with SHARED.open() as source, path.open("w") as out:
        for i, line in zip(range(n), source, strict=False):
            row = json.loads(line)
            candidates = [{"text": row[s]["solution"], "source": s} for s in SOURCES]
            out.write(json.dumps({"id": f"gsm8k-{i:04d}", "prompt": row["question"], "candidates": candidates}) + "\n")
    return path


def timed(fn):
    started = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - started


class TreeCPU:
    """CPU seconds used by this process and its descendants (Ray's daemons and workers: this process
    starts the local cluster) while a block runs. Sampled twice a second, so that a process that exits
    meanwhile (a Ray worker at the end of its pool) still counts. Unlike wall time, this figure does
    not depend on what other jobs on the machine are doing."""

    def __enter__(self) -> TreeCPU:
        self.start = self._read()
        self.last, self._stop = dict(self.start), threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.last.update(self._read())
        self.seconds = sum(used - self.start.get(pid, 0.0) for pid, used in self.last.items())

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            self.last.update(self._read())

    @staticmethod
    def _read() -> dict[int, float]:
        import psutil

        me, used = psutil.Process(), {}
        for proc in [me, *me.children(recursive=True)]:
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue
            used[proc.pid] = times.user + times.system
        return used


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--instructions", type=int, default=32)
    parser.add_argument("--part-size", type=int, default=4)
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each kind; the fastest is reported")
    args = parser.parse_args()

    import ray
    import torch

    from grape.data.tables import read_sidecar
    from grape.models.load import load_model
    from grape.scoring.distributed import RaySettings, score_on_ray
    from grape.scoring.score import ScoreSettings, score
    from grape.text import Renderer

    folder = Path(tempfile.mkdtemp(prefix="grape-ray-bench-"))
    pool = write_pool(folder / "pool.jsonl", args.instructions)
    settings = ScoreSettings(model=args.model, dtype=args.dtype, device="cpu", part_size=args.part_size)
    load_model(args.model, args.dtype, "cpu")  # converts a GGUF once, outside the timings; warms the page cache

    loaded, load_s = timed(lambda: load_model(args.model, args.dtype, "cpu"))
    tokens = engine_tokens(Renderer(loaded.tokenizer, settings.template, settings.eos), pool)
    del loaded
    _, ray_start_s = timed(lambda: ray.init(num_cpus=os.cpu_count(), include_dashboard=False, logging_level="ERROR"))

    def run(name: str, attempt: int) -> dict:
        output = folder / f"{name}-{attempt}.parquet"  # a fresh output: nothing to resume
        with TreeCPU() as cpu:
            if name == "single":
                rows, seconds = timed(lambda: score(pool, output, settings))
                busy = [seconds - load_s]
            else:
                cluster = RaySettings(workers=int(name.removeprefix("ray-")))
                rows, seconds = timed(lambda: score_on_ray(pool, output, settings, cluster))
                busy = [w["busy_s"] for w in read_sidecar(output)["ray"]["per_worker"].values()]
        return {"wall_s": seconds, "busy": busy, "rows": rows, "cpu_s": cpu.seconds}

    # Interleaved (A B C C B A ...) and the best of each kept: other jobs on the machine come and go.
    order = ["single", "ray-1", "ray-2"]
    load_before, results = os.getloadavg()[0], {}
    for attempt in range(args.repeats):
        for name in order if attempt % 2 == 0 else order[::-1]:
            result = run(name, attempt)
            if name not in results or result["wall_s"] < results[name]["wall_s"]:
                results[name] = result
    load_after = os.getloadavg()[0]
    ray.shutdown()

    reference = results["single"]["rows"]
    candidates = sum(r["status"] == "scored" for r in reference)
    print(f"\n{platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"{args.model} {args.dtype}; {args.instructions} instructions, {candidates} candidates, {tokens:,} tokens; "
          f"part size {args.part_size}; Ray cluster start {ray_start_s:.1f} s (not in the figures); best of "
          f"{args.repeats}; load average {load_before:.1f} before, {load_after:.1f} after")  # fmt: skip
    header = ("run", "wall s", "cand/s", "tok/s", "vs single", "scoring s", "CPU s", "max |Δ|")
    print(f"{header[0]:8} " + " ".join(f"{h:>11}" for h in header[1:]))
    for name, result in results.items():
        delta = max(
            abs(a["mean_logprob"] - b["mean_logprob"])
            for a, b in zip(reference, result["rows"], strict=True)
            if a["status"] == "scored"
        )
        busy = " + ".join(f"{b:.1f}" for b in result["busy"])
        wall = result["wall_s"]
        ratio = wall / results["single"]["wall_s"]
        cells = (f"{wall:.1f}", f"{candidates / wall:.2f}", f"{tokens / wall:.0f}", f"{ratio:.2f}x", busy,
                 f"{result['cpu_s']:.0f}", f"{delta:.1e}")  # fmt: skip
        print(f"{name:8} " + " ".join(f"{c:>11}" for c in cells))


def engine_tokens(renderer, pool: Path) -> int:
    """Tokens the engine computes for the pool: each prompt once, plus every response (with EOS)."""
    from grape.data.layout import load_instructions

    total = 0
    for inst in load_instructions(pool):
        encoded = renderer.encode(inst.prompt, [c.text for c in inst.candidates])
        total += sum(len(e.response) for e in encoded) + sum(len(p) for p in {tuple(e.prompt) for e in encoded})
    return total


if __name__ == "__main__":
    main()
