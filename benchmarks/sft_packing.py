"""Packed or padded SFT batches: seconds per optimizer step of `grape sft`, the layouts in one process.

  .venv/bin/python benchmarks/sft_packing.py --data SELECTION.jsonl --rounds 3 --steps 4 --threads 1

Layouts (``--layouts``): ``packed`` is grape's (each batch one row, attention per example on a CPU:
grape.models.segment_attention); ``packed-square`` the same row through transformers' SDPA, a block-diagonal
mask over the whole row (what grape did before; here by switching the per-example attention off); ``padded``
each batch padded to its longest row (``--no-padding-free``; beware: 8 × the longest row of skewed data).

Each round runs `grape.sft` (in memory, nothing saved) once per layout, in rotating order: the same rows, the
same seed, so the same batches; ``--steps`` optimizer steps each. A step's time is measured by a trainer
callback from its start to its end; the first step of a run is left out (kernels and buffers are made there),
the rest are averaged. Per-round ratios against ``packed`` compare runs that saw the same load. Also per
layout: the loss of the first step (equal up to float rounding: the layouts compute the same mean) and the
peak resident memory above the level before the run.

The rows: any selection `grape sft` reads (``prompt``/``messages`` + ``response``), e.g. the BFCL training
rows of experiments/bfcl (`grape tools prepare`), where tool definitions make prompts long.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from contextlib import nullcontext
from pathlib import Path
from unittest.mock import patch

import torch
from measure import load_average, machine_state, peak_rss
from round_stats import per_round_ratios, ratio_refusal, rotated_order, spread_of
from transformers import TrainerCallback

import grape.training.sft as sft_module
from grape.training.sft import sft

LAYOUTS = {"packed": True, "packed-square": True, "padded": False}


class StepTimer(TrainerCallback):
    """Seconds of each optimizer step (forward, backward and the optimizer's update)."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._started = 0.0

    def on_step_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.seconds.append(time.perf_counter() - self._started)


def one_run(data: Path, layout: str, args: argparse.Namespace) -> dict:
    timer, memory = StepTimer(), {}
    packed = LAYOUTS[layout]
    # packed-square: the row's attention through transformers' SDPA (no per-example attention)
    square = patch.object(sft_module, "packed_attention", lambda model: nullcontext())
    with peak_rss(memory), square if layout == "packed-square" else nullcontext():
        result = sft(str(data), None, callbacks=[timer], model=args.model, template=args.template, max_steps=args.steps,
                     padding_free=packed, batch_size=args.batch_size, lora_r=args.lora_r, lr=2e-4,
                     logging_steps=1, seed=0)  # fmt: skip
    return {"step_seconds": statistics.mean(timer.seconds[1:]), "all_steps": timer.seconds,
            "loss_first": result.metrics["loss_first"], "peak_rss_delta": memory["peak_delta"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, required=True, help="a selection JSONL that `grape sft` reads")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=4, help="optimizer steps per run (the first is left out)")
    parser.add_argument("--layouts", nargs="+", choices=list(LAYOUTS), default=["packed", "packed-square"])
    parser.add_argument("--template", help="default: as the selection was made (its sidecar)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps must be at least 2: the first step of a run is left out")
    torch.set_num_threads(args.threads)
    state = machine_state(torch.device("cpu"))
    if "packed" not in args.layouts or len(args.layouts) < 2:
        parser.error("--layouts: packed and at least one layout to compare it with")
    runs: dict[str, list[dict]] = {name: [] for name in args.layouts}
    loads = [load_average()]
    for round_index in range(args.rounds):
        for name in rotated_order(args.layouts, round_index):
            runs[name].append(one_run(args.data, name, args))
            loads.append(load_average())
        figures = ", ".join(f"{n} {runs[n][-1]['step_seconds']:.1f} s/step" for n in args.layouts)
        print(f"round {round_index + 1}: {figures}", flush=True)
    seconds = {name: [r["step_seconds"] for r in rs] for name, rs in runs.items()}
    spreads = {name: spread_of(values) for name, values in seconds.items()}
    for name, spread in spreads.items():
        peak = max(r["peak_rss_delta"] for r in runs[name]) / 2**20
        print(f"{name}: {spread.median:.2f} s/step (min-max {spread.low:.2f}-{spread.high:.2f}, "
              f"range {spread.range_pct:.1f}%), peak memory +{peak:,.0f} MiB, "
              f"first loss {runs[name][0]['loss_first']:.6f}")  # fmt: skip
    ratios = {}
    for name in (n for n in args.layouts if n != "packed"):
        ratio = spread_of(per_round_ratios(seconds[name], seconds["packed"]))
        refusal = ratio_refusal([ratio, spreads[name], spreads["packed"]])
        ratios[name] = {**ratio.as_dict(), "refusal": refusal}
        print(
            f"{name} / packed time: " + (refusal or f"{ratio.median:.2f}x (rounds {ratio.low:.2f}-{ratio.high:.2f}x)")
        )
    print(f"load average (1 min): {loads[0]:.2f} at the start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after runs")
    if args.json:
        report = {"machine": state, "args": {k: str(v) for k, v in vars(args).items()}, "runs": runs,
                  "spreads": {n: s.as_dict() for n, s in spreads.items()}, "time_over_packed": ratios,
                  "load_average": loads}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
