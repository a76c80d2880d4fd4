"""The compiled scoring engine on a CPU with glibc's heap kept for each call (`kept_heap`, the CPU default) against
glibc's own behaviour (``host_heap="system"``), in one process.

    .venv/bin/python benchmarks/heap_rounds.py --rounds 31 --json docs/heap_rounds_scoped_default8.json

glibc serves a block of 32 MiB or more with its own ``mmap`` and unmaps it on ``free``, and gives the top of its
heap back to the system once more than 64 MiB lies free there. Gemma 3 270M's MLP intermediates over a 4,424-token
batch are 35 MiB, so each forward pass page-faults and zeroes them again, layer after layer (the eighteenth session
counted ~240,000 minor faults a round). Inside `kept_heap` (grape/models/cpu_heap.py) every block comes from the
heap and the heap does not shrink, so the next layer reuses the blocks; on leaving, glibc's steady state comes back
and the kept pages are given back (``malloc_trim(0)``), so each kept call starts from a trimmed heap.

The process is put in glibc's steady state at the start (``M_MMAP_THRESHOLD`` 32 MiB, ``M_TRIM_THRESHOLD`` 64 MiB:
where a long-running process's dynamic thresholds stop). Each round calls the engine (gemma-3-270m, float32, the
CPU defaults, compiled) in each state, in a rotating order, on score_bench's default workload (8 instructions x K=4,
P=256, R in 48..80); each timed call follows an untimed call in the same state, since the heap's layout (free chunks
glibc reuses whatever its thresholds) carries over from the call before. Minor page faults counted per timed call
(``getrusage``). Figures: seconds per call, system / kept per round (median and spread), faults.

Earlier versions (the nineteenth session, switching glibc with its own ``mallopt`` calls and keeping the heap across
runs) are in docs/performance.md, with their figures.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import time
from pathlib import Path

import torch
from measure import load_average, machine_state
from round_stats import per_round_ratios, rotated_order, spread_of
from score_bench import engine_scores, make_groups

from grape.models.cpu_heap import kept_heap, steady_state
from grape.models.load import load_model
from grape.scoring.settings import DEVICE_DEFAULTS, EngineSettings


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def glibc_in_steady_state() -> None:
    """Put glibc's heap in its steady state (where a long-running process's thresholds stop), or exit where the heap
    cannot be switched (not glibc, or the environment chose the allocator)."""
    with kept_heap() as switchable:
        if not switchable:
            raise SystemExit("glibc's heap cannot be switched here: not glibc, or the environment chose the allocator")
    steady_state(ctypes.CDLL(None))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    glibc_in_steady_state()
    loaded = load_model("gemma-3-270m", dtype="float32", device="cpu")
    groups = make_groups(loaded.model.config.vocab_size, 8, 4, 256, 64)
    cpu = DEVICE_DEFAULTS["cpu"]
    states = {heap: EngineSettings(cpu.batch_tokens, cpu.max_row_tokens, cpu.logits_budget_bytes, True, cpu.attention,
                                   host_heap=heap) for heap in ("kept", "system")}  # fmt: skip

    def run(name: str) -> tuple[float, int, list[list[float]]]:
        engine_scores(loaded.model, groups, states[name])  # untimed: the heap's layout reaches this state's
        faults = minor_faults()
        started = time.perf_counter()
        sums = engine_scores(loaded.model, groups, states[name])
        return time.perf_counter() - started, minor_faults() - faults, sums

    warm = {name: run(name) for name in states}  # compiles, and checks that the state changes no score
    error = max(abs(a - b) for a, b in zip(sum(warm["kept"][2], []), sum(warm["system"][2], []), strict=True))
    print(f"warm-up: |sum log-prob| differs by at most {error:.2e} between the states")

    seconds: dict[str, list[float]] = {name: [] for name in states}
    faults: dict[str, list[int]] = {name: [] for name in states}
    loads = [load_average()]
    for index in range(args.rounds):
        for name in rotated_order(list(states), index):
            took, faulted, _ = run(name)
            seconds[name].append(took)
            faults[name].append(faulted)
        loads.append(load_average())
        print(f"round {index + 1}: " + "  ".join(f"{n} {seconds[n][-1]:.2f} s {faults[n][-1]:>7,d} faults"
                                                for n in states))  # fmt: skip
    ratios = per_round_ratios(seconds["system"], seconds["kept"])
    ratio = spread_of(ratios)
    print(f"load {loads[0]:.2f} at start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after rounds")
    for name in states:
        middle = sorted(faults[name])[len(faults[name]) // 2]
        print(f"{name:6s} {spread_of(seconds[name]).median:.3f} s per run, median faults {middle:,d}")
    print(f"system / kept, per round: {ratio.brief()}; sorted: {' '.join(f'{r:.3f}' for r in sorted(ratios))}")
    if args.json:
        report = {"machine": machine_state(torch.device("cpu")), "rounds": args.rounds, "loads": loads,
                  "seconds": seconds, "minor_faults": faults, "system_over_kept": ratio.as_dict(),
                  "system_over_kept_per_round": ratios,
                  "max_abs_sum_logprob_difference": error}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
