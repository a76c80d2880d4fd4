"""The LM head's fold: grape's running log-sum-exp (separate max / subtract / exp / sum passes over each
vocabulary tile) against each tile's log-sum-exp from one fused ATen log-softmax, alone and inside the compiled
engine. Tried in grape on 2026-12-05 and not kept (docs/performance.md); it lives here so that the comparison can
be re-run.

    .venv/bin/python benchmarks/fold_speed.py --rounds 9                  # 2,048 rows x Gemma 3's vocabulary
    .venv/bin/python benchmarks/fold_speed.py --paired --rounds 5         # the same, the two timed tile by tile
    .venv/bin/python benchmarks/fold_speed.py --engine --rounds 15        # the compiled engine, passes / softmax
    .venv/bin/python benchmarks/fold_speed.py --engine --rounds 31 --slice-rows 256   # softmax on 256-row slices
    python3 benchmarks/fold_speed.py --engine --random-shape llama-3.1-8b --device cuda --instructions 64 --rounds 7

Alone: 2,048 rows of 640 against a random 262,144 x 640 head (Gemma 3 270M's shape), the CPU's 2,048-entry tile,
float32; methods ``matmuls`` (the tiles' products only, what either fold costs at least), ``passes`` (grape's
`_logsumexp_by_tiles`) and ``softmax`` (`logsumexp_by_log_softmax`), once per round in a rotating order. A VM's
matmul speed drifts by more than the folds differ, so ``--paired`` times the work tile by tile: per tile, the
tile's product, then one fold's work on it, the product again, then the other's (order alternating by tile);
each product is charged to the fold before it, because a fold can slow the product after it (a log-softmax on
256-row slices did: 2026-12-05).
With ``--engine``: the compiled scoring engine (gemma-3-270m, float32, the CPU defaults) on score_bench's default
workload (8 instructions x K=4, P=256, R in 48..80), each round once with each fold in a rotating order; with
``--random-shape`` and ``--device cuda``, an 8B-shaped random model in bf16 with the GPU's defaults, eager (the GPU's
tile is the whole vocabulary: the passes read [rows, vocab] logits five times and write them three times, the
log-softmax reads them three times and writes once).
With ``--slice-rows``, the log-softmax runs on slices of that many rows into a scratch of that size (on a CPU,
256 rows x the 2,048 tile: 2 MiB, which stays in L2) instead of a second buffer of the whole tile's.
Figures: medians, passes / softmax per round, sorted (the order-statistic interval is read from them).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

import torch
from measure import load_average, machine_state
from round_stats import per_round_ratios, rotated_order, spread_of

from grape.models import logprobs
from grape.models.logprobs import CPU_VOCAB_TILE


def logsumexp_by_log_softmax(
    rows: torch.Tensor, weight: torch.Tensor, head: tuple, tile: int, slice_rows: int | None = None
) -> torch.Tensor:
    """[n] float32 log-sum-exp of the logits of ``rows`` [n, H], like grape's `_logsumexp_by_tiles`: each tile's
    from one ``log_softmax`` into a float32 buffer (its lastdim kernel takes a row's max, its sum of exponentials and
    the output in one sweep over the row) as ``x_0 - log_softmax(x)_0``, exact to the float32 rounding of
    ``|x_0 - lse|``; the tiles' merged by one log-sum-exp at the end. Needs finite logits. With ``slice_rows``, the
    log-softmax runs on slices of that many rows into a buffer of that size (256 x 2,048: 2 MiB, the L2), not into
    a second buffer of the tile's."""
    bias, softcap, scale = head
    n, vocab = rows.shape[0], weight.shape[0]
    transformed = bias is not None or softcap is not None or scale != 1.0
    raw = torch.empty(n * tile, dtype=rows.dtype, device=rows.device)
    slice_rows = min(n, slice_rows or n)
    softmaxed = torch.empty(slice_rows * tile, dtype=torch.float32, device=rows.device)
    upcast = raw  # a bias, scale or soft-cap is applied in float32
    if transformed and rows.dtype != torch.float32:
        upcast = torch.empty(n * tile, dtype=torch.float32, device=rows.device)
    starts = range(0, vocab, tile)
    tile_lse = torch.empty(n, len(starts), dtype=torch.float32, device=rows.device)
    for i, first in enumerate(starts):
        width = min(first + tile, vocab) - first
        logits = torch.mm(rows, weight[first : first + width].t(), out=raw[: n * width].view(n, width))
        if upcast is not raw:
            logits = upcast[: n * width].view(n, width).copy_(logits)
        if bias is not None:
            logits.add_(bias[first : first + width])
        if scale != 1.0:
            logits.mul_(scale)
        if softcap is not None:
            logits.div_(softcap).tanh_().mul_(softcap)
        for start in range(0, n, slice_rows):
            stop = min(start + slice_rows, n)
            out = softmaxed[: (stop - start) * width].view(stop - start, width)
            torch.log_softmax(logits[start:stop], dim=1, dtype=torch.float32, out=out)
            tile_lse[start:stop, i] = logits[start:stop, 0].float() - out[:, 0]
    return torch.logsumexp(tile_lse, dim=1)


@contextmanager
def log_softmax_fold(slice_rows: int | None = None) -> Iterator[None]:
    """Within the block, `token_logprobs` (and so the scoring engine) folds by `logsumexp_by_log_softmax` (on
    slices of ``slice_rows`` rows, if given)."""
    grape_fold = logprobs._logsumexp_by_tiles
    logprobs._logsumexp_by_tiles = partial(logsumexp_by_log_softmax, slice_rows=slice_rows)
    try:
        yield
    finally:
        logprobs._logsumexp_by_tiles = grape_fold


def matmuls_only(rows: torch.Tensor, weight: torch.Tensor, tile: int) -> None:
    """The tiles' products alone, into one reused buffer: the floor under either fold."""
    raw = torch.empty(rows.shape[0] * tile, dtype=rows.dtype)
    for first in range(0, weight.shape[0], tile):
        width = min(first + tile, weight.shape[0]) - first
        torch.mm(rows, weight[first : first + width].t(), out=raw[: rows.shape[0] * width].view(-1, width))


def head_shaped(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """2,048 rows of 640 and a random 262,144 x 640 head: Gemma 3 270M's LM head on one block."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(2048, 640, generator=generator) / 8, torch.randn(262144, 640, generator=generator) / 8


def fold_alone(rounds: int, slice_rows: int | None = None) -> dict:
    rows, weight = head_shaped()
    head, tile = (None, None, 1.0), CPU_VOCAB_TILE
    methods = {
        "matmuls": lambda: matmuls_only(rows, weight, tile),
        "passes": lambda: logprobs._logsumexp_by_tiles(rows, weight, head, tile),
        "softmax": lambda: logsumexp_by_log_softmax(rows, weight, head, tile, slice_rows),
    }
    error = (methods["passes"]() - methods["softmax"]()).abs().max().item()
    print(f"the fold alone: 2,048 rows x 262,144 x 640, tile {tile}; |log-sum-exp| differs by at most {error:.2e}")
    about = {"rows": 2048, "vocab": 262144, "tile": tile, "slice_rows": slice_rows, "max_abs_difference": error}
    return _rounds(methods, rounds, about)


def fold_paired(rounds: int, slice_rows: int | None = None) -> dict:
    """The folds timed tile by tile: each one's elementwise work right after the tile's product, and the product
    that follows it (see the docstring); the report's ratio is of the two together."""
    rows, weight = head_shaped()
    n, tile, vocab = rows.shape[0], CPU_VOCAB_TILE, weight.shape[0]
    slice_rows = slice_rows or n
    raw, softmaxed = torch.empty(n, tile), torch.empty(slice_rows, tile)

    def passes(logits: torch.Tensor, state: list[torch.Tensor]) -> None:  # grape's per-tile work, as in logprobs.py
        running_max, running_sum = state
        new_max = torch.maximum(running_max, logits.amax(dim=1))
        running_sum.mul_(torch.exp(running_max - new_max)).add_(logits.sub_(new_max[:, None]).exp_().sum(dim=1))
        state[0] = new_max

    def softmax(logits: torch.Tensor, lse: torch.Tensor) -> None:
        for start in range(0, n, slice_rows):
            out = softmaxed[: min(slice_rows, n - start)]
            torch.log_softmax(logits[start : start + len(out)], dim=1, dtype=torch.float32, out=out)
            lse[start : start + len(out)] = logits[start : start + len(out), 0] - out[:, 0]

    seconds: dict[str, list[float]] = {"passes": [], "softmax": []}
    elementwise: dict[str, list[float]] = {"passes": [], "softmax": []}
    loads = [load_average()]
    for index in range(rounds):
        work, product_after = {"passes": 0.0, "softmax": 0.0}, {"passes": 0.0, "softmax": 0.0}
        state, lse, last = [torch.full((n,), float("-inf")), torch.zeros(n)], torch.empty(n), None
        for position, first in enumerate(range(0, vocab - tile + 1, tile)):
            for name in rotated_order(["passes", "softmax"], position):
                started = time.perf_counter()
                torch.mm(rows, weight[first : first + tile].t(), out=raw)
                multiplied = time.perf_counter()
                passes(raw, state) if name == "passes" else softmax(raw, lse)
                work[name] += time.perf_counter() - multiplied
                if last is not None:  # a product is charged to the fold before it, which may slow it
                    product_after[last] += multiplied - started
                last = name
        for name in work:
            elementwise[name].append(work[name])
            seconds[name].append(work[name] + product_after[name])
        loads.append(load_average())
        print(f"round {index + 1}: " + "  ".join(f"{name} {work[name]:.3f} s of elementwise work, "
                                                 f"{product_after[name]:.3f} s in the products after it"
                                                 for name in work))  # fmt: skip
    elementwise_ratio = spread_of(per_round_ratios(elementwise["passes"], elementwise["softmax"])).as_dict()
    about = {"rows": n, "vocab": vocab, "tile": tile, "slice_rows": slice_rows,
             "timed": "each fold's elementwise work and the product after it", "elementwise_seconds": elementwise,
             "elementwise_passes_over_softmax": elementwise_ratio}  # fmt: skip
    return _report(seconds, loads, about)


def fold_in_engine(
    rounds: int, shape: str | None = None, device: str = "cpu", instructions: int = 8, slice_rows: int | None = None
) -> dict:
    """The engine with each fold: gemma-3-270m in float32 on a CPU, compiled (the CPU defaults); with ``shape``, a
    random-weight model of that shape in bfloat16 on ``device``, eager, with that device's defaults (speed only)."""
    from random_model import random_model
    from score_bench import engine_scores, make_groups

    from grape.models.load import load_model, resolve_device
    from grape.scoring.settings import DEVICE_DEFAULTS, EngineSettings

    where = resolve_device(device)
    if shape:
        loaded = random_model(shape, torch.bfloat16, where)
    else:
        loaded = load_model("gemma-3-270m", dtype="float32", device=device)
    groups = make_groups(loaded.model.config.vocab_size, instructions, 4, 256, 64)
    defaults = DEVICE_DEFAULTS["cuda" if where.type == "cuda" else "cpu"]
    settings = EngineSettings(defaults.batch_tokens, defaults.max_row_tokens, defaults.logits_budget_bytes,
                              where.type == "cpu", defaults.attention, defaults.kernels)  # fmt: skip

    def run(switch) -> list[list[float]]:
        with switch():
            sums = engine_scores(loaded.model, groups, settings)
        if where.type == "cuda":
            torch.cuda.synchronize()
        return sums

    methods = {"passes": lambda: run(nullcontext), "softmax": lambda: run(partial(log_softmax_fold, slice_rows))}
    sums = {name: method() for name, method in methods.items()}  # warm-up (compiles), and equal scores
    error = max(abs(a - b) for a, b in zip(sum(sums["passes"], []), sum(sums["softmax"], []), strict=True))
    tokens = sum(len(r) for g in groups for r in g.responses)
    print(f"the engine on {where.type}: {len(groups)} groups, {tokens} response tokens; |sum log-prob| differs by at "
          f"most {error:.2e} between the folds")  # fmt: skip
    about = {"model": shape or "gemma-3-270m", "response_tokens": tokens, "slice_rows": slice_rows,
             "max_abs_sum_logprob_difference": error}  # fmt: skip
    return _rounds(methods, rounds, about)


def _rounds(methods: dict[str, Callable[[], object]], rounds: int, about: dict) -> dict:
    """Each method once per round in a rotating order."""
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    loads = [load_average()]
    for index in range(rounds):
        for name in rotated_order(list(methods), index):
            started = time.perf_counter()
            methods[name]()
            seconds[name].append(time.perf_counter() - started)
        loads.append(load_average())
        print(f"round {index + 1}: " + "  ".join(f"{n} {seconds[n][-1]:.3f} s" for n in methods))
    return _report(seconds, loads, about)


def _report(seconds: dict[str, list[float]], loads: list[float], about: dict) -> dict:
    """Medians and passes / softmax per round, printed and as the JSON report."""
    ratios = per_round_ratios(seconds["passes"], seconds["softmax"])
    print(f"load {loads[0]:.2f} at start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after rounds")
    for name, values in seconds.items():
        print(f"{name:8s} {spread_of(values).median:.3f} s per call (min {min(values):.3f}, max {max(values):.3f})")
    print(f"passes / softmax, per round: {spread_of(ratios).brief()}; sorted: "
          + " ".join(f"{r:.3f}" for r in sorted(ratios)))  # fmt: skip
    return {"machine": machine_state(torch.device("cpu")), **about, "rounds": len(ratios), "loads": loads,
            "seconds": seconds, "passes_over_softmax_per_round": ratios,
            "passes_over_softmax": spread_of(ratios).as_dict()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--engine", action="store_true", help="time the compiled engine instead of the fold alone")
    parser.add_argument("--paired", action="store_true", help="time the folds' elementwise work tile by tile")
    parser.add_argument("--random-shape", default=None, help="with --engine: a random-weight model of this shape, bf16")
    parser.add_argument("--device", default="cpu", help="with --engine and --random-shape: e.g. cuda")
    parser.add_argument("--instructions", type=int, default=8, help="with --engine: groups of K=4, P=256, R~64")
    parser.add_argument("--slice-rows", type=int, default=None, help="the log-softmax on slices of this many rows")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    engine = args.engine and fold_in_engine(args.rounds, args.random_shape, args.device, args.instructions,
                                            args.slice_rows)  # fmt: skip
    report = engine or (fold_paired(args.rounds, args.slice_rows) if args.paired else None)
    report = report or fold_alone(args.rounds, args.slice_rows)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
