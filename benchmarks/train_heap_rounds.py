"""Training steps on a CPU with glibc's heap kept (`kept_heap`) against glibc's steady state, in one process.

    .venv/bin/python benchmarks/train_heap_rounds.py --rounds 11 --json docs/train_heap_rounds.json

The scoring engine keeps glibc's heap for each call (grape/models/cpu_heap.py); training does not yet. A training
step allocates and frees far larger blocks than a scoring pass (Gemma 3 270M on 4 x 256 tokens: 1 GiB of logits, its
log-softmax and their gradients), and glibc serves each block of 32 MiB or more by ``mmap`` and unmaps it on
``free``, so every step faults in and zeroes them again. Each round runs a block of ``--steps`` timed steps in each
state, in an alternating order; each block starts with one untimed step in its state (the heap's layout carries
over). The step: gemma-3-270m in float32, AdamW, a causal-LM loss on 4 x 256 random tokens, what `grape sft` runs
per step on a CPU without its data pipeline. Figures: seconds per step, system / kept per round (sorted, for the
order-statistic interval), minor page faults per step.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from heap_rounds import glibc_in_steady_state, minor_faults
from measure import load_average, machine_state
from round_stats import per_round_ratios, rotated_order, spread_of

from grape.models.cpu_heap import kept_heap
from grape.models.load import load_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per block")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()

    glibc_in_steady_state()
    model = load_model("gemma-3-270m", dtype="float32", device="cpu").model
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-6)
    ids = torch.randint(0, model.config.vocab_size, (4, 256), generator=torch.Generator().manual_seed(0))

    def step() -> None:
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    def block(state: str, steps: int) -> tuple[float, float]:
        with kept_heap(state == "kept"):
            step()  # untimed: the heap reaches this state's layout
            faults, started = minor_faults(), time.perf_counter()
            for _ in range(steps):
                step()
            return (time.perf_counter() - started) / steps, (minor_faults() - faults) / steps

    states = ["kept", "system"]
    for state in states:
        block(state, 1)  # warm-up: first-use costs of both states
    seconds: dict[str, list[float]] = {s: [] for s in states}
    faults: dict[str, list[float]] = {s: [] for s in states}
    loads = [load_average()]
    for index in range(args.rounds):
        for state in rotated_order(states, index):
            took, faulted = block(state, args.steps)
            seconds[state].append(took)
            faults[state].append(faulted)
        loads.append(load_average())
        print(f"round {index + 1}: " + "  ".join(f"{s} {seconds[s][-1]:.2f} s/step {faults[s][-1]:>10,.0f} faults"
                                                for s in states), flush=True)  # fmt: skip
    ratios = per_round_ratios(seconds["system"], seconds["kept"])
    print(f"load {loads[0]:.2f} at start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after rounds")
    for state in states:
        print(f"{state:6s} {spread_of(seconds[state]).median:.2f} s per step, median faults "
              f"{spread_of(faults[state]).median:,.0f}")  # fmt: skip
    print(f"system / kept, per round: {spread_of(ratios).brief()}; sorted: "
          + " ".join(f"{r:.3f}" for r in sorted(ratios)))  # fmt: skip
    if args.json:
        report = {"machine": machine_state(torch.device("cpu")), "rounds": args.rounds, "steps": args.steps,
                  "loads": loads, "seconds_per_step": seconds, "minor_faults_per_step": faults,
                  "system_over_kept_per_round": ratios, "system_over_kept": spread_of(ratios).as_dict()}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
