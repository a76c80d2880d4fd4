"""The LM head's fold on a CPU: each vocabulary tile's log-sum-exp by grape's one fused log-softmax against the
separate max / subtract / exp / sum passes grape used until 2026-12-05, alone and inside the compiled engine.

    .venv/bin/python benchmarks/fold_speed.py --rounds 9                  # 2,048 rows x Gemma 3's vocabulary
    .venv/bin/python benchmarks/fold_speed.py --engine --rounds 15        # the compiled engine, passes / grape

Alone: 2,048 rows of 640 against a random 262,144 x 640 head (Gemma 3 270M's shape), the CPU's 2,048-entry tile,
float32; methods ``matmuls`` (the tiles' products only, what either fold costs at least), ``passes`` and ``grape``
(`grape.models.logprobs._logsumexp_by_tiles`), once per round in a rotating order. With ``--engine``: the compiled
scoring engine (gemma-3-270m, float32, the CPU defaults) on score_bench's default workload (8 instructions x K=4,
P=256, R in 48..80), each round once with grape's fold and once with the passes (`passes_fold`) in a rotating
order. Figures: medians, passes / grape per round, sorted (the order-statistic interval is read from them).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from measure import load_average, machine_state
from round_stats import per_round_ratios, rotated_order, spread_of

from grape.models import logprobs
from grape.models.logprobs import CPU_VOCAB_TILE


def logsumexp_by_passes(rows: torch.Tensor, weight: torch.Tensor, head: tuple, tile: int) -> torch.Tensor:
    """grape's fold until 2026-12-05: a running max and a running sum of exponentials, updated per tile by separate
    max, subtract, exp and sum passes over the tile (same arguments and result as `_logsumexp_by_tiles`)."""
    bias, softcap, scale = head
    n, vocab = rows.shape[0], weight.shape[0]
    raw = torch.empty(n * tile, dtype=rows.dtype, device=rows.device)
    upcast = raw if rows.dtype == torch.float32 else torch.empty(n * tile, dtype=torch.float32, device=rows.device)
    running_max = torch.full((n,), float("-inf"), dtype=torch.float32, device=rows.device)
    running_sum = torch.zeros(n, dtype=torch.float32, device=rows.device)
    for first in range(0, vocab, tile):
        last = min(first + tile, vocab)
        logits = torch.mm(rows, weight[first:last].t(), out=raw[: n * (last - first)].view(n, last - first))
        if upcast is not raw:
            logits = upcast[: logits.numel()].view_as(logits).copy_(logits)
        if bias is not None:
            logits.add_(bias[first:last])
        if scale != 1.0:
            logits.mul_(scale)
        if softcap is not None:
            logits.div_(softcap).tanh_().mul_(softcap)
        new_max = torch.maximum(running_max, logits.amax(dim=1))
        running_sum.mul_(torch.exp(running_max - new_max)).add_(logits.sub_(new_max[:, None]).exp_().sum(dim=1))
        running_max = new_max
    return running_max + running_sum.log()


@contextmanager
def passes_fold() -> Iterator[None]:
    """Within the block, `token_logprobs` (and so the scoring engine) folds its tiles by `logsumexp_by_passes`."""
    grape_fold = logprobs._logsumexp_by_tiles
    logprobs._logsumexp_by_tiles = logsumexp_by_passes
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


def fold_alone(rounds: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    rows = torch.randn(2048, 640, generator=generator) / 8
    weight = torch.randn(262144, 640, generator=generator) / 8
    head, tile = (None, None, 1.0), CPU_VOCAB_TILE
    methods = {
        "matmuls": lambda: matmuls_only(rows, weight, tile),
        "passes": lambda: logsumexp_by_passes(rows, weight, head, tile),
        "grape": lambda: logprobs._logsumexp_by_tiles(rows, weight, head, tile),
    }
    error = (methods["passes"]() - methods["grape"]()).abs().max().item()
    print(f"the fold alone: 2,048 rows x 262,144 x 640, tile {tile}; |log-sum-exp| differs by at most {error:.2e}")
    return _rounds(methods, rounds, {"rows": 2048, "vocab": 262144, "tile": tile, "max_abs_difference": error})


def fold_in_engine(rounds: int) -> dict:
    from score_bench import engine_scores, make_groups

    from grape.models.load import load_model
    from grape.scoring.settings import DEVICE_DEFAULTS, EngineSettings

    loaded = load_model("gemma-3-270m", dtype="float32", device="cpu")
    groups = make_groups(loaded.model.config.vocab_size, 8, 4, 256, 64)
    cpu = DEVICE_DEFAULTS["cpu"]
    settings = EngineSettings(cpu.batch_tokens, cpu.max_row_tokens, cpu.logits_budget_bytes, True, cpu.attention)

    def with_passes() -> list[list[float]]:
        with passes_fold():
            return engine_scores(loaded.model, groups, settings)

    methods = {"grape": lambda: engine_scores(loaded.model, groups, settings), "passes": with_passes}
    sums = {name: method() for name, method in methods.items()}  # warm-up (compiles), and equal scores
    error = max(abs(a - b) for a, b in zip(sum(sums["grape"], []), sum(sums["passes"], []), strict=True))
    tokens = sum(len(r) for g in groups for r in g.responses)
    print(f"the compiled engine: {len(groups)} groups, {tokens} response tokens; |sum log-prob| differs by at most "
          f"{error:.2e} between the folds")  # fmt: skip
    return _rounds(methods, rounds, {"response_tokens": tokens, "max_abs_sum_logprob_difference": error})


def _rounds(methods: dict[str, Callable[[], object]], rounds: int, about: dict) -> dict:
    """Each method once per round in a rotating order; the report with passes / grape per round."""
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    loads = [load_average()]
    for index in range(rounds):
        for name in rotated_order(list(methods), index):
            started = time.perf_counter()
            methods[name]()
            seconds[name].append(time.perf_counter() - started)
        loads.append(load_average())
        print(f"round {index + 1}: " + "  ".join(f"{n} {seconds[n][-1]:.3f} s" for n in methods))
    ratios = per_round_ratios(seconds["passes"], seconds["grape"])
    print(f"load {loads[0]:.2f} at start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after rounds")
    for name, values in seconds.items():
        print(f"{name:8s} {spread_of(values).median:.3f} s per call (min {min(values):.3f}, max {max(values):.3f})")
    print(
        f"passes / grape, per round: {spread_of(ratios).brief()}; sorted: "
        + " ".join(f"{r:.3f}" for r in sorted(ratios))
    )
    return {"machine": machine_state(torch.device("cpu")), **about, "rounds": rounds, "loads": loads,
            "seconds": seconds, "passes_over_grape_per_round": ratios,
            "passes_over_grape": spread_of(ratios).as_dict()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--engine", action="store_true", help="time the compiled engine instead of the fold alone")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = fold_in_engine(args.rounds) if args.engine else fold_alone(args.rounds)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
