"""The scoring engine's attention on a CPU: grape's segment attention (a cascade per example, without gradients)
against the per-run SDPA path it replaced and two other ways of cutting the work, alone and inside the compiled
engine, on the default workload's layout (score_bench.py: 8 instructions x K=4, P=256, R in 48..80).

    .venv/bin/python benchmarks/segment_attention_speed.py --rounds 15                 # attention alone
    .venv/bin/python benchmarks/segment_attention_speed.py --engine --rounds 31        # the engine, per_run / grape
    .venv/bin/python benchmarks/segment_attention_speed.py --engine --with-blocks --rounds 9   # and by products

Gemma 3 270M's attention shapes (4 query heads, 1 key-value head, head dim 256), random inputs laid out as
transformers' projections leave them, one packed row of the 8 groups ``[prompt][r1][r2][r3][r4]``; each method is
timed over 18 calls (the model's 18 layers), once per round in a rotating order; figures are medians and per-round
ratios against the per-run path (round_stats.py). Methods:

- ``grape``: `grape.models.segment_attention.segment_sdpa_forward` without gradients, the engine's path: per example
  one CPU flash-attention call for the prompt and its responses over the prompt's keys, each response causally over
  itself, the two merged by their log-sum-exps; the key-value head expanded as a view;
- ``per_run``: the path grape took until 2026-12-05 (`per_run_forward`): the key-value head repeated to 4 heads,
  then per run one SDPA call over its prompt's keys and its own (the two concatenated); it lives here so that the
  comparison can be re-run;
- ``blocks``: each run by plain matrix products (`attend_by_blocks`): the query heads that share a key head folded
  into one matrix, blocks of 512 query rows per key head whose keys end at the block's last query (only the
  diagonal blocks compute masked entries), scores, mask, softmax, a second product. Tried in the engine on
  2026-12-04 and not kept (docs/performance.md);
- ``gqa``: the per-run SDPA calls with ``enable_gqa`` instead of repeated heads (torch >= 2.5).

Every method is checked against ``per_run`` (1e-5) before timing; ratios are ``per_run`` over each method, per
round. With ``--engine``: the compiled scoring engine (gemma-3-270m, float32, the CPU defaults) on score_bench's
default groups, each round once with each path (``per_run``, ``grape``, and ``blocks`` with ``--with-blocks``) in a
rotating order.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
import torch.nn.functional as F
from measure import load_average, machine_state
from round_stats import per_round_ratios, rotated_order, spread_of

from grape.models import segment_attention
from grape.models.segment_attention import Run, _run_attention, plan_runs, run_mask, segment_sdpa_forward

HEADS, HEAD_DIM, LAYERS = 4, 256, 18  # gemma-3-270m: 4 query heads share 1 key-value head
SCALE = HEAD_DIM**-0.5


class _CausalModule:
    is_causal, sliding_window = True, None  # the runs here are shorter than Gemma 3's 512-token window


def packed_positions(groups: int, k: int, prompt: int, low: int, high: int, seed: int) -> torch.Tensor:
    """[1, T] position ids of ``groups`` packed groups: the prompt and r1 from 0, each later response from P."""
    generator = torch.Generator().manual_seed(seed)
    positions: list[int] = []
    for _ in range(groups):
        lengths = torch.randint(low, high + 1, (k,), generator=generator).tolist()
        positions += list(range(prompt + lengths[0]))
        for length in lengths[1:]:
            positions += list(range(prompt, prompt + length))
    return torch.tensor(positions)[None]


QUERY_ROWS_PER_BLOCK = 512  # of 256-2,048, the fastest here: larger blocks compute more masked entries


def attend_by_blocks(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, run: Run, window: int | None,
                     scale: float, out: torch.Tensor, block: int) -> None:  # fmt: skip
    """Attention of one run by matrix products, ``block`` queries at a time, into ``out``; no gradients.

    Args:
        query: [H, T, D] one row's queries; key, value: [H_kv, T, D] (H a multiple of H_kv; not repeated).
        run: the run's tokens and the prefix they see (`plan_runs`); window: a sliding window or None.
        out: [T, H, D], the row's output; rows run.start:run.end are written.
    """
    heads, _, dim = query.shape
    kv_heads = key.shape[0]
    groups, length = heads // kv_heads, run.end - run.start
    own = slice(run.start, run.end)
    if run.prefix:
        prefix = slice(run.prefix_start, run.prefix_start + run.prefix)
        keys, values = torch.cat([key[:, prefix], key[:, own]], dim=1), torch.cat([value[:, prefix], value[:, own]], 1)
    else:
        keys, values = key[:, own], value[:, own]
    hidden = ~run_mask(length, run.prefix, window, query.device)  # [L, prefix + L]: True where not seen
    for first in range(0, length, block):
        last = min(first + block, length)
        n, seen = last - first, run.prefix + last  # no query of the block sees a key after its last one
        # nor, with a sliding window, one more than a window before its first (key index = position here)
        start = max(0, run.prefix + first - window + 1) if window is not None else 0
        # [n, H_kv, g, D] -> [H_kv, n * g, D]: the queries of one key head as one matrix (a view for one key head)
        rows = query[:, run.start + first : run.start + last].transpose(0, 1).reshape(n, kv_heads, groups, dim)
        rows = rows.transpose(0, 1).reshape(kv_heads, n * groups, dim)
        scores = torch.bmm(rows, keys[:, start:seen].transpose(1, 2)).mul_(scale)  # [H_kv, n * g, seen - start]
        shut = hidden[None, first:last, None, start:seen]
        scores.view(kv_heads, n, groups, seen - start).masked_fill_(shut, float("-inf"))
        mixed = torch.bmm(torch.softmax(scores, dim=-1), values[:, start:seen])  # [H_kv, n * g, D]
        out[run.start + first : run.start + last] = (
            mixed.view(kv_heads, n, groups, dim).transpose(0, 1).reshape(n, heads, dim)
        )


@torch.compiler.disable
def blocks_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """`segment_sdpa_forward`'s contract ([B, H, T, D] in, ([B, T, H, D], None) out) by `attend_by_blocks`; only
    what the engine passes (no mask, no dropout, position ids)."""
    batch, heads, length, dim = query.shape
    window = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
    positions = kwargs["position_ids"].reshape(-1, length).expand(batch, -1)
    out = torch.empty(batch, length, heads, dim, dtype=query.dtype, device=query.device)
    block = max(1, QUERY_ROWS_PER_BLOCK // (heads // key.shape[1]))
    for b in range(batch):
        for run in plan_runs(positions[b]):
            attend_by_blocks(query[b], key[b], value[b], run, window, scaling or dim**-0.5, out[b], block)
    return out, None


@torch.compiler.disable
def per_run_forward(module, query, key, value, attention_mask, dropout=0.0, scaling=None, **kwargs):
    """The per-run path, `segment_sdpa_forward`'s contract: heads repeated, then each run by `_run_attention`
    (SDPA over its prefix's keys and its own, concatenated); only what the engine passes."""
    from transformers.integrations.sdpa_attention import repeat_kv

    window = kwargs.get("sliding_window", getattr(module, "sliding_window", None))
    positions = kwargs["position_ids"].reshape(-1, query.shape[2]).expand(query.shape[0], -1)
    groups = query.shape[1] // key.shape[1]
    key, value = repeat_kv(key, groups), repeat_kv(value, groups)
    rows = []
    for b in range(query.shape[0]):
        q, k, v = query[b : b + 1], key[b : b + 1], value[b : b + 1]
        pieces = [_run_attention(q, k, v, run, window, dropout, scaling) for run in plan_runs(positions[b])]
        rows.append(torch.cat(pieces, dim=2))
    return torch.cat(rows).transpose(1, 2).contiguous(), None


@contextmanager
def attention_path(forward) -> Iterator[None]:
    """Within the block, the scoring engine's packed attention runs ``forward`` (registered on each use)."""
    grape_path = segment_attention.segment_sdpa_forward
    segment_attention.segment_sdpa_forward = forward
    try:
        yield
    finally:
        segment_attention.segment_sdpa_forward = grape_path


def grape(q, k, v, positions) -> torch.Tensor:
    with torch.no_grad():
        return segment_sdpa_forward(_CausalModule(), q, k, v, None, scaling=SCALE, position_ids=positions)[0]


def per_run(q, k, v, positions) -> torch.Tensor:
    with torch.no_grad():
        return per_run_forward(_CausalModule(), q, k, v, None, scaling=SCALE, position_ids=positions)[0]


def blocks(q, k, v, positions) -> torch.Tensor:
    with torch.no_grad():
        return blocks_forward(_CausalModule(), q, k, v, None, scaling=SCALE, position_ids=positions)[0]


def gqa(q, k, v, positions) -> torch.Tensor:
    pieces = []
    for run in plan_runs(positions[0]):
        own = slice(run.start, run.end)
        if run.prefix == 0:
            pieces.append(F.scaled_dot_product_attention(q[:, :, own], k[:, :, own], v[:, :, own], is_causal=True,
                                                         scale=SCALE, enable_gqa=True))  # fmt: skip
            continue
        prefix = slice(run.prefix_start, run.prefix_start + run.prefix)
        keys, values = torch.cat([k[:, :, prefix], k[:, :, own]], 2), torch.cat([v[:, :, prefix], v[:, :, own]], 2)
        mask = run_mask(run.end - run.start, run.prefix, None, q.device)
        pieces.append(F.scaled_dot_product_attention(q[:, :, own], keys, values, attn_mask=mask, scale=SCALE,
                                                     enable_gqa=True))  # fmt: skip
    return torch.cat(pieces, 2).transpose(1, 2).contiguous()


def attention_alone(rounds: int) -> dict:
    torch.manual_seed(0)
    positions = packed_positions(groups=8, k=4, prompt=256, low=48, high=80, seed=0)
    t = positions.shape[1]
    # laid out as transformers' projections leave them: [B, T, H, D] in memory, seen as [B, H, T, D]
    q = torch.randn(1, t, HEADS, HEAD_DIM).transpose(1, 2)
    k, v = (torch.randn(1, t, 1, HEAD_DIM).transpose(1, 2) for _ in range(2))
    methods = {"per_run": per_run, "grape": grape, "blocks": blocks, "gqa": gqa}
    reference = per_run(q, k, v, positions)
    for name, method in methods.items():  # equal results first (and warm kernels)
        error = (method(q, k, v, positions) - reference).abs().max().item()
        if error > 1e-5:
            raise SystemExit(f"{name} differs from per_run by {error:.2e}")
    print(f"attention alone: {t} tokens, {LAYERS} layers per timing")
    timed = {name: lambda m=method: m(q, k, v, positions) for name, method in methods.items()}
    return _rounds(timed, rounds, {"tokens": t, "calls_per_timing": LAYERS}, repeats=LAYERS)


def engine(rounds: int, with_blocks: bool = False) -> dict:
    from score_bench import engine_scores, make_groups

    from grape.models.load import load_model
    from grape.scoring.settings import DEVICE_DEFAULTS, EngineSettings

    loaded = load_model("gemma-3-270m", dtype="float32", device="cpu")
    groups = make_groups(loaded.model.config.vocab_size, 8, 4, 256, 64)
    cpu = DEVICE_DEFAULTS["cpu"]
    settings = EngineSettings(cpu.batch_tokens, cpu.max_row_tokens, cpu.logits_budget_bytes, True, cpu.attention)

    def on(forward) -> Callable[[], list[list[float]]]:
        def scores() -> list[list[float]]:
            with attention_path(forward):
                return engine_scores(loaded.model, groups, settings)

        return scores

    methods = {"per_run": on(per_run_forward), "grape": lambda: engine_scores(loaded.model, groups, settings)}
    if with_blocks:
        methods["blocks"] = on(blocks_forward)
    sums = {name: sum(method(), []) for name, method in methods.items()}  # warm-up (compiles), and equal scores
    error = max(abs(a - b) for name in methods for a, b in zip(sums["per_run"], sums[name], strict=True))
    tokens = sum(len(r) for g in groups for r in g.responses)
    print(f"the compiled engine: {len(groups)} groups, {tokens} response tokens; |sum log-prob| differs by at most "
          f"{error:.2e} between the paths")  # fmt: skip
    return _rounds(methods, rounds, {"response_tokens": tokens, "max_abs_sum_logprob_difference": error})


def _rounds(methods: dict[str, Callable[[], object]], rounds: int, about: dict, repeats: int = 1) -> dict:
    """Each method ``repeats`` times per round, in a rotating order; the report with per_run / method per round."""
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    loads = [load_average()]
    for index in range(rounds):
        for name in rotated_order(list(methods), index):
            started = time.perf_counter()
            for _ in range(repeats):
                methods[name]()
            seconds[name].append(time.perf_counter() - started)
        loads.append(load_average())
    report = {"machine": machine_state(torch.device("cpu")), **about, "rounds": rounds, "loads": loads,
              "seconds": seconds, "per_run_over": {}}  # fmt: skip
    print(f"load {loads[0]:.2f} at start, {min(loads[1:]):.2f}-{max(loads[1:]):.2f} after rounds")
    for name, values in seconds.items():
        ratios = per_round_ratios(seconds["per_run"], values)
        report["per_run_over"][name] = {**spread_of(ratios).as_dict(), "sorted": sorted(ratios)}
        print(f"{name:10s} {spread_of(values).median * 1000:8.1f} ms   per_run / {name}, per round: "
              f"{spread_of(ratios).brief()}; sorted: " + " ".join(f"{r:.3f}" for r in sorted(ratios)))  # fmt: skip
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--engine", action="store_true", help="time the compiled engine instead of attention alone")
    parser.add_argument("--with-blocks", action="store_true", help="with --engine: the matrix-product path too")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    report = engine(args.rounds, args.with_blocks) if args.engine else attention_alone(args.rounds)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
