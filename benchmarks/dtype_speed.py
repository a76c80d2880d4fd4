"""float32 against bfloat16 scoring on this machine, and the LM head by tiles against whole-vocabulary chunks.

    .venv/bin/python benchmarks/dtype_speed.py --rounds 5

In one process, on two workloads (the default synthetic one of score_bench.py: 8 instructions x K=4,
P=256, R≈64; and real text: 4 AlpacaEval instructions x 15 generators, answers cut at 1,000 characters):

- the engine with the target loaded in float32 and in bfloat16 (bf16 matmuls, which oneDNN runs on AMX
  where the CPU has it, accumulating in float32; the log-softmax in float32);
- the LM head alone on the engine's scored rows: by vocabulary tiles with a running log-sum-exp (grape's
  inference path) against one whole-vocabulary chunk of rows at a time (the differentiable path, what
  grape did for scoring before), in both dtypes.

Every round runs every method once in a rotating order; ratios are per round (the same load), reported
as median and range, refused when spread over 10% (round_stats.py). The matmul is measured for both dtypes, as
its best product (the peak) and its rate sustained over 5 s (measure.matmul_rates), and the 1-minute load
average at each round.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from measure import load_average, machine_state, matmul_rates
from real_groups import alpaca_groups
from round_stats import MAX_SPREAD_PCT, per_round_ratios, ratio_refusal, rotated_order, spread_of
from score_bench import engine_scores, make_groups

from grape.models.load import load_model
from grape.models.logprobs import _differentiable_logprobs, head_settings, token_logprobs
from grape.scoring.attention_masks import packed_attention_mask
from grape.scoring.engine import ScoringEngine
from grape.scoring.packing import build_batch
from grape.scoring.settings import EngineSettings


def head_inputs(model, groups) -> tuple[torch.Tensor, torch.Tensor]:
    """[N, H] final hidden states of the rows that predict a response token, [N] their targets."""
    engine = ScoringEngine(model, EngineSettings())
    states, targets = [], []
    with torch.inference_mode():
        for g in range(len(groups)):
            row = build_batch(groups, [[g]])
            masks = {
                kind: packed_attention_mask(row.segment, row.branch, row.position_ids, window)
                for kind, window in engine.windows.items()
            }
            mask = masks if len(masks) > 1 else next(iter(masks.values()))
            out = engine.decoder(
                input_ids=row.input_ids, attention_mask=mask, position_ids=row.position_ids, use_cache=False
            ).last_hidden_state
            states.append(out.reshape(-1, out.shape[-1]).index_select(0, row.source_index))
            targets.append(row.target_ids)
    return torch.cat(states), torch.cat(targets)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    load_at_start = load_average()
    models = {dtype: load_model(args.model, dtype=dtype, device="cpu") for dtype in ("float32", "bfloat16")}
    tokenizer = models["float32"].tokenizer
    workloads = {
        "synthetic": make_groups(models["float32"].model.config.vocab_size, 8, 4, 256, 64),
        "alpaca": alpaca_groups(tokenizer, 4, max_chars=1000),
    }
    methods = {}
    for work, groups in workloads.items():
        for dtype, loaded in models.items():
            methods[f"engine {work} {dtype}"] = (
                lambda m=loaded.model, g=groups: engine_scores(m, g, EngineSettings()),
                groups,
            )
    heads = {}
    for dtype, loaded in models.items():
        hidden, targets = head_inputs(loaded.model, workloads["alpaca"])
        head = head_settings(loaded.model)
        heads[dtype] = hidden.shape[0]
        with torch.inference_mode():
            methods[f"head tiles {dtype}"] = (
                lambda h=hidden, t=targets, s=head: token_logprobs(h, targets=t, **s),
                None,
            )
            methods[f"head chunks {dtype}"] = (
                lambda h=hidden, t=targets, s=head: _differentiable_logprobs(
                    h, s["weight"], t, (s["bias"], s["softcap"], s["scale"]), 170
                ),
                None,
            )
    matmul = {d: matmul_rates(loaded.dtype, torch.device("cpu"), min_seconds=5.0) for d, loaded in models.items()}
    for run, _ in methods.values():  # warm-up
        with torch.inference_mode():
            run()
    seconds = {name: [] for name in methods}
    loads = []
    for r in range(args.rounds):
        loads.append(load_average())
        for name in rotated_order(list(methods), r):
            started = time.perf_counter()
            with torch.inference_mode():
                methods[name][0]()
            seconds[name].append(time.perf_counter() - started)
        print(f"round {r + 1}/{args.rounds} (load {loads[-1]:.2f})", flush=True)
    record = {"machine": machine_state(torch.device("cpu")), "load": {"start": load_at_start, "rounds": loads,
              "after": load_average()}, "matmul_peak_gflops": {d: m.best / 1e9 for d, m in matmul.items()},
              "matmul_sustained_gflops": {d: m.sustained / 1e9 for d, m in matmul.items()},
              "head_rows": heads, "seconds": seconds, "ratios": {}}  # fmt: skip
    after = record["load"]["after"]
    print(f"matmul best/sustained: fp32 {matmul['float32'].best / 1e9:.0f}/{matmul['float32'].sustained / 1e9:.0f}, "
          f"bf16 {matmul['bfloat16'].best / 1e9:.0f}/{matmul['bfloat16'].sustained / 1e9:.0f} GFLOP/s; load "
          f"{load_at_start:.2f} at start, {min(loads):.2f}-{max(loads):.2f} in rounds, {after:.2f} after")  # fmt: skip
    for name, values in seconds.items():
        s = spread_of(values)
        print(f"  {name:28s} {s.median:7.3f} s  ({s.low:.3f}-{s.high:.3f}, range {s.range_pct:.1f}%)")
    pairs = [(f"engine {w} bfloat16", f"engine {w} float32") for w in workloads]
    pairs += [(f"head tiles {d}", f"head chunks {d}") for d in models]
    for fast, slow in pairs:
        ratio = spread_of(per_round_ratios(seconds[slow], seconds[fast]))
        speeds = [spread_of([1 / s for s in seconds[n]]) for n in (fast, slow)]
        refusal = ratio_refusal([ratio, *speeds], MAX_SPREAD_PCT)
        record["ratios"][f"{fast} vs {slow}"] = {"ratio": ratio.as_dict(), "refused": refusal}
        shown = refusal or f"{ratio.median:.2f}x faster (rounds {ratio.low:.2f}-{ratio.high:.2f}x)"
        print(f"  {fast} vs {slow}: {shown}")
    if args.json:
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
