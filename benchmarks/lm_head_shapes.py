"""The LM head's shapes on a CPU: grape's tiled log-sum-exp fold under several (tile, block) shapes, against
the same matmuls alone, each round against its own matmul peak.

    .venv/bin/python benchmarks/lm_head_shapes.py --rounds 9 --shapes 4096x1024,2048x2048

Gemma 3's head (262,144 × 640) on ``--rows`` random hidden rows (2,048: about the default workload's scored
rows). Methods, each run once per round in a rotating order:

- ``fold TxB``: `grape.models.logprobs.token_logprobs` with a vocabulary tile of T entries and blocks of B
  rows (the engine's path; T×B = 4,096 × 1,024 is its CPU default);
- ``mm TxB``: only the tile matmuls of the same shape, into one buffer (what the fold cannot go below);
- ``fold-transposed TxB`` (with ``--transposed``): the fold computed as ``W_tile @ rows^T`` and reduced over
  dim 0, the other orientation of the same product.

The 2,048³ matmul is measured before every round and after the last, as its best single product (the peak)
and as its rate sustained over ``--sustained-seconds`` (measure.matmul_rates: on a VM whose speed jitters the
best product catches a burst); each rate is reported as a fraction of the mean of its round's two peaks and of
its two sustained rates (round_stats.bracketing_peaks), and every method's rate against the first method's, per
round (the same minute of the machine), as median and range.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from measure import load_average, machine_state, matmul_rates
from round_stats import bracketing_peaks, per_round_ratios, rotated_order, spread_of

from grape.models.logprobs import token_logprobs

HIDDEN, VOCAB = 640, 262_144  # gemma-3-270m's head


def fold(rows: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, tile: int, block: int) -> torch.Tensor:
    """[n] log-probabilities by grape's inference path with this tile and block."""
    return token_logprobs(rows, weight, targets, chunk_rows=block, vocab_tile=tile)


def matmuls_only(rows: torch.Tensor, weight: torch.Tensor, tile: int, block: int) -> None:
    """The fold's tile products alone, each written into one reused buffer."""
    for start in range(0, rows.shape[0], block):
        block_rows = rows[start : start + block]
        out = torch.empty(block_rows.shape[0], tile)
        for first in range(0, weight.shape[0], tile):
            torch.mm(block_rows, weight[first : first + tile].t(), out=out[:, : min(tile, weight.shape[0] - first)])


def fold_transposed(rows: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, tile: int,
                    block: int) -> torch.Tensor:  # fmt: skip
    """[n] log-probabilities with each tile computed as [tile, rows] (W_tile @ rows^T), reduced over dim 0."""
    out = []
    for start in range(0, rows.shape[0], block):
        block_rows = rows[start : start + block]
        n = block_rows.shape[0]
        logits = torch.empty(tile, n)
        running_max, running_sum = torch.full((n,), float("-inf")), torch.zeros(n)
        for first in range(0, weight.shape[0], tile):
            part = torch.mm(weight[first : first + tile], block_rows.t(), out=logits[: min(tile, VOCAB - first)])
            new_max = torch.maximum(running_max, part.amax(dim=0))
            running_sum.mul_(torch.exp(running_max - new_max)).add_(part.sub_(new_max).exp_().sum(dim=0))
            running_max = new_max
        target = torch.einsum("nh,nh->n", block_rows, weight[targets[start : start + block]])
        out.append(target - running_max - running_sum.log())
    return torch.cat(out)


def shapes(text: str) -> list[tuple[int, int]]:
    """'4096x1024,2048x2048' -> [(4096, 1024), (2048, 2048)] (tile x block)."""
    return [tuple(int(part) for part in item.split("x")) for item in text.split(",")]  # type: ignore[misc]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=2048)
    parser.add_argument("--shapes", type=shapes, default=shapes("4096x1024,2048x2048"), help="tile x block, ...")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--transposed", action="store_true", help="also the W_tile @ rows^T orientation")
    parser.add_argument("--sustained-seconds", type=float, default=5.0,
                        help="how long the sustained matmul rate is measured between rounds")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.manual_seed(0)
    weight = torch.randn(VOCAB, HIDDEN) * 0.02
    rows = torch.randn(args.rows, HIDDEN)
    targets = torch.randint(0, VOCAB, (args.rows,))
    methods = {}
    for tile, block in args.shapes:
        methods[f"fold {tile}x{block}"] = lambda t=tile, b=block: fold(rows, weight, targets, t, b)
        methods[f"mm {tile}x{block}"] = lambda t=tile, b=block: matmuls_only(rows, weight, t, b)
        if args.transposed:
            methods[f"fold-transposed {tile}x{block}"] = lambda t=tile, b=block: fold_transposed(
                rows, weight, targets, t, b
            )
    reference = torch.log_softmax(rows @ weight.t(), dim=-1).gather(1, targets[:, None]).squeeze(1)
    for name, method in methods.items():  # every fold equals the whole log-softmax (and warms its kernels)
        result = method()
        if result is not None and not torch.allclose(result, reference, atol=1e-4):
            raise SystemExit(f"{name} differs from the whole log-softmax by {(result - reference).abs().max():.2e}")
    flops = 2 * args.rows * HIDDEN * VOCAB
    device = torch.device("cpu")
    rates: dict[str, list[float]] = {name: [] for name in methods}
    loads = [load_average()]
    yardsticks = [matmul_rates(torch.float32, device, min_seconds=args.sustained_seconds)]
    for index in range(args.rounds):
        for name in rotated_order(list(methods), index):
            started = time.perf_counter()
            methods[name]()
            rates[name].append(flops / (time.perf_counter() - started))
        yardsticks.append(matmul_rates(torch.float32, device, min_seconds=args.sustained_seconds))
        loads.append(load_average())
        print(f"round {index + 1}/{args.rounds} (load {loads[-1]:.2f}), matmul after it: best "
              f"{yardsticks[-1].best / 1e9:.0f}, sustained {yardsticks[-1].sustained / 1e9:.0f} GFLOP/s")  # fmt: skip
    peaks = bracketing_peaks([y.best for y in yardsticks])
    sustained = bracketing_peaks([y.sustained for y in yardsticks])
    first = next(iter(methods))
    report = {"machine": machine_state(device), "rows": args.rows, "rounds": args.rounds, "loads": loads,
              "peaks_gflops": [y.best / 1e9 for y in yardsticks],
              "sustained_gflops": [y.sustained / 1e9 for y in yardsticks], "methods": {}}  # fmt: skip
    print(f"\n{'method':24s} {'GFLOP/s':>8s} {'of round peak':>22s} {'of round sustained':>22s} "
          f"{'rate / ' + first:>24s}   (median (min-max) over rounds)")  # fmt: skip
    for name, values in rates.items():
        of_peak = spread_of(per_round_ratios(values, peaks))
        of_sustained = spread_of(per_round_ratios(values, sustained))
        against = spread_of(per_round_ratios(values, rates[first]))
        print(f"{name:24s} {spread_of(values).median / 1e9:8.1f} {of_peak.brief():>22s} "
              f"{of_sustained.brief():>22s} {against.brief():>24s}")  # fmt: skip
        report["methods"][name] = {"gflops": [v / 1e9 for v in values], "of_round_peak": of_peak.as_dict(),
                                   "of_round_sustained": of_sustained.as_dict(),
                                   "rate_against_first": against.as_dict()}  # fmt: skip
    print(f"load average: {loads[0]:.2f} at start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after the rounds")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
