"""The compiled scoring engine on a CPU with glibc's heap kept against glibc's usual behaviour, in one process.

    .venv/bin/python benchmarks/heap_rounds.py --rounds 15 --json docs/heap_rounds_default8_fixed.json

glibc serves a block of 32 MiB or more with its own ``mmap`` and unmaps it on ``free``, and gives the top of its
heap back to the system once more than twice its mmap threshold lies free there. Gemma 3 270M's MLP intermediates
over a 4,424-token batch are 35 MiB, so each forward pass page-faults and zeroes them again (the eighteenth session
counted ~240,000 minor faults a round). With the heap kept (``M_MMAP_MAX`` 0: every block from the heap;
``M_TRIM_THRESHOLD`` 2 GiB: the heap does not shrink) the pages are faulted once.

The eighteenth session compared the two between processes, where two processes run back to back differ by more
than the change. Here both run in one process, switched between runs with ``mallopt``:

- ``kept``: ``M_MMAP_MAX`` 0 and ``M_TRIM_THRESHOLD`` 2**31 - 1 (mallopt takes a C int: the largest, 2 GiB);
- ``glibc``: glibc's steady state once its dynamic mmap threshold has reached its ceiling (what a long-running
  process gets after freeing a block just under 32 MiB): ``M_MMAP_MAX`` 65,536, ``M_MMAP_THRESHOLD`` 32 MiB,
  ``M_TRIM_THRESHOLD`` 64 MiB, and ``malloc_trim(0)`` on the switch, so the heap the kept runs grew goes back.

After each switch one untimed run brings the state to its steady state (a kept heap grown, a glibc heap trimmed
to its own level); the next run is timed. Two earlier versions are in docs/performance.md: one passed 2**40 as the
trim threshold, which reached ``mallopt`` as 0 (ctypes keeps the low 32 bits) and trimmed the kept heap on every
free; one left trimming off in the glibc state too, where glibc reuses the kept heap's free chunks before it ever
maps a block, so both states were the kept one (0 faults in its glibc run).

Each round runs the compiled engine (gemma-3-270m, float32, the CPU defaults) once in each state, in a rotating
order, on score_bench's default workload (8 instructions x K=4, P=256, R in 48..80), with the minor page faults of
each run counted (``getrusage``). Figures: seconds per run, glibc / kept per round (median and spread), faults.
"""

from __future__ import annotations

import argparse
import ctypes
import ctypes.util
import json
import resource
import time
from pathlib import Path

import torch
from measure import load_average, machine_state
from round_stats import per_round_ratios, rotated_order, spread_of
from score_bench import engine_scores, make_groups

from grape.models.load import load_model
from grape.scoring.settings import DEVICE_DEFAULTS, EngineSettings

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's malloc.h
MIB = 1 << 20
NEVER_TRIM = 2**31 - 1  # mallopt's value is a C int: 2**40 reaches it as 0, which trims the heap on every free


def libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c"))


def keep_heap(c: ctypes.CDLL) -> None:
    c.mallopt(M_MMAP_MAX, 0)
    c.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)


def glibc_steady_state(c: ctypes.CDLL) -> None:
    c.mallopt(M_MMAP_MAX, 65536)
    c.mallopt(M_MMAP_THRESHOLD, 32 * MIB)
    c.mallopt(M_TRIM_THRESHOLD, 64 * MIB)
    c.malloc_trim(0)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    c = libc()
    loaded = load_model("gemma-3-270m", dtype="float32", device="cpu")
    groups = make_groups(loaded.model.config.vocab_size, 8, 4, 256, 64)
    cpu = DEVICE_DEFAULTS["cpu"]
    settings = EngineSettings(cpu.batch_tokens, cpu.max_row_tokens, cpu.logits_budget_bytes, True, cpu.attention)
    states = {"kept": keep_heap, "glibc": glibc_steady_state}

    def run(name: str) -> tuple[float, int, list[list[float]]]:
        states[name](c)
        engine_scores(loaded.model, groups, settings)  # untimed: the state reaches its steady state
        faults = minor_faults()
        started = time.perf_counter()
        sums = engine_scores(loaded.model, groups, settings)
        return time.perf_counter() - started, minor_faults() - faults, sums

    warm = {name: run(name) for name in states}  # compiles, and checks that the state changes no score
    error = max(abs(a - b) for a, b in zip(sum(warm["kept"][2], []), sum(warm["glibc"][2], []), strict=True))
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
    ratios = per_round_ratios(seconds["glibc"], seconds["kept"])
    ratio = spread_of(ratios)
    print(f"load {loads[0]:.2f} at start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after rounds")
    for name in states:
        middle = sorted(faults[name])[len(faults[name]) // 2]
        print(f"{name:6s} {spread_of(seconds[name]).median:.3f} s per run, median faults {middle:,d}")
    print(f"glibc / kept, per round: {ratio.brief()}; sorted: {' '.join(f'{r:.3f}' for r in sorted(ratios))}")
    if args.json:
        report = {"machine": machine_state(torch.device("cpu")), "rounds": args.rounds, "loads": loads,
                  "seconds": seconds, "minor_faults": faults, "glibc_over_kept": ratio.as_dict(),
                  "glibc_over_kept_per_round": ratios,
                  "max_abs_sum_logprob_difference": error}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
