"""Scoring speed: grape's engine against two baselines, in one process, on the same pairs, repeated.

    .venv/bin/python benchmarks/score_bench.py                       # gemma-3-270m, 2 x K=4, P=256, R≈64, fp32
    .venv/bin/python benchmarks/score_bench.py --instructions 8 --json speed.json
    .venv/bin/python benchmarks/score_bench.py --dtype bfloat16
    .venv/bin/python benchmarks/score_bench.py --alpaca 8 --max-chars 1500   # real text, 15 candidates each
    .venv/bin/python benchmarks/score_bench.py --memory-case --skip-baselines --rounds 1  # 16 x 1,024 tokens
    python benchmarks/score_bench.py --random-shape llama-3.1-8b --dtype bfloat16 --instructions 64  # a GPU

Baselines (baseline_scorers.py): naive, one pair at a time with full logits (IFD / Superfiltering-style
scripts); padded, pairs right-padded into batches of --padded-batch with full logits (DPO trainers'
reference passes).
How it times them: after a warm-up, --rounds rounds; each round runs every method once, in an order that
rotates from round to round. Per method it prints the median tokens/s (prompt+response tokens of all
pairs, the same numerator for all) and the spread over rounds; ratios are medians of per-round ratios
(both timings of a ratio saw the same load), printed only when the per-round ratio and both rates vary
by at most --max-spread percent. It records the 1-minute load average before, at each round and after.
Each method's FLOPs are counted from the model's shape (flop_count.py): naive / engine in FLOPs is the
speed-up equal efficiency would give, and the measured ratio over it is what faster kernels add.
Also: useful FLOP/s (the engine's minimal FLOPs, for every method) and each method's own FLOP/s, as a
fraction of the matmul peak measured here in the same dtype, and per round against the peak and the
sustained matmul rate measured just before and after it (useful/rpeak, useful/rsust); peak memory above
the loaded model (max over rounds); the max |Δ mean_logprob| against the naive reference.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from baseline_scorers import naive_scores, padded_scores
from engine_profile import print_profile
from flop_count import ModelShape, engine_flops, naive_flops, padded_flops, shape_of
from measure import MatmulRates, load_average, machine_state, matmul_peak_flops, matmul_rates, peak_memory
from random_model import SHAPES, random_model
from real_groups import alpaca_groups
from round_stats import MAX_SPREAD_PCT, bracketing_peaks, per_round_ratios, ratio_refusal, rotated_order, spread_of

from grape.models.load import load_model, resolve_device, resolve_dtype
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup, split_groups
from grape.scoring.settings import DEVICE_DEFAULTS


def make_groups(vocab: int, n: int, k: int, prompt: int, response: int, seed: int = 0) -> list[TokenGroup]:
    rng = random.Random(seed)
    draw = lambda length: [rng.randrange(1000, vocab) for _ in range(length)]  # noqa: E731
    # responses vary by up to ±25% around the asked length, as real candidates do
    return [TokenGroup(draw(prompt), [draw(rng.randint(response * 3 // 4, response * 5 // 4)) for _ in range(k)])
            for _ in range(n)]  # fmt: skip


def engine_scores(model, groups: list[TokenGroup], settings: EngineSettings) -> list[list[float]]:
    return [r.sum_logprob.tolist() for r in ScoringEngine(model, settings).score(groups)]


@dataclass
class Method:
    run: Callable[[], list[list[float]]]  # the sum of log-probs per candidate, as Python floats
    flops: float  # what it computes, counted by flop_count.py
    seconds: list[float] = field(default_factory=list)  # one per round
    peak_bytes: list[int] = field(default_factory=list)
    sums: list[list[float]] | None = None  # of the last round


def timed(method: Method, device: torch.device) -> None:
    """One run: its seconds, peak memory above the level at entry, and sums appended to ``method``."""
    memory: dict = {}
    with peak_memory(memory, device):
        started = time.perf_counter()
        method.sums = method.run()  # every method returns Python floats, so its GPU work has finished here
        method.seconds.append(time.perf_counter() - started)
    method.peak_bytes.append(memory["peak_delta"])


def max_error(groups: list[TokenGroup], sums: list[list[float]], reference: list[list[float]]) -> float:
    """Largest |Δ mean log-prob| per candidate of ``sums`` against ``reference``."""
    return max(abs(sums[g][k] - reference[g][k]) / len(response)
               for g, group in enumerate(groups) for k, response in enumerate(group.responses))  # fmt: skip


def engine_work(shape: ModelShape, groups: list[TokenGroup], max_row_tokens: int) -> float:
    """The engine's FLOPs: each piece of a group (split when it does not fit one row) repeats the prompt."""
    return sum(engine_flops(shape, len(groups[g].prompt), [len(groups[g].responses[k]) for k in piece])
               for g, piece in split_groups(groups, max_row_tokens))  # fmt: skip


def summarise(
    methods: dict[str, Method],
    tokens: int,
    useful: float,
    peak: float,
    groups,
    spec_peak,
    round_peaks: list[float],
    round_sustained: list[float],
    round_window_best: list[float],
) -> dict:
    """Per method: tokens/s over the rounds (median, spread), FLOP rates at the median, memory, error.
    ``round_peaks``: each round's own matmul peak (bracketing_peaks); useful/rpeak is the median over
    rounds of the useful FLOP rate over that round's peak: each round against the machine as it ran then.
    ``round_sustained``: the same with the matmul rate sustained over seconds (measure.MatmulRates);
    useful/rsust is the workload's rate against a yardstick measured the same way, an average.
    ``round_window_best``: the fastest product of each sustained window, a stricter peak (JSON only)."""
    reference = methods["naive"].sums if "naive" in methods else None
    print(f"\n{'method':18s} {'tok/s':>7s} {'min-max':>13s} {'range':>6s} {'IQR':>6s} {'useful/peak':>11s} "
          f"{'own/peak':>8s} {'useful/rpeak':>12s} {'min-max':>11s} {'useful/rsust':>12s} {'min-max':>11s} "
          f"{'GFLOP':>7s} {'+MiB':>7s}  "
          "max|Δmean|")  # fmt: skip
    summary = {}
    for name, method in methods.items():
        rate = spread_of([tokens / s for s in method.seconds])
        seconds = tokens / rate.median
        useful_rates = [useful / s for s in method.seconds]
        of_round = spread_of(per_round_ratios(useful_rates, round_peaks))
        of_sustained = spread_of(per_round_ratios(useful_rates, round_sustained))
        of_window_best = spread_of(per_round_ratios(useful_rates, round_window_best))
        entry = {
            "tokens_per_s": rate.as_dict(),
            "seconds_per_round": method.seconds,
            "flops": method.flops,
            "useful_of_peak": useful / seconds / peak,
            "own_of_peak": method.flops / seconds / peak,
            "useful_of_round_peak": of_round.as_dict(),
            "useful_of_round_sustained": of_sustained.as_dict(),
            "useful_of_round_window_best": of_window_best.as_dict(),
            "useful_of_spec_peak": useful / seconds / spec_peak if spec_peak else None,
            "peak_mib": max(method.peak_bytes) / 2**20,
            "max_err": max_error(groups, method.sums, reference) if reference else None,
        }
        summary[name] = entry
        error = f"{entry['max_err']:.2e}" if reference else "-"
        spec = f"  MFU {100 * entry['useful_of_spec_peak']:5.1f}% of spec" if spec_peak else ""
        print(f"{name:18s} {rate.median:7.0f} {rate.low:6.0f}-{rate.high:<6.0f} {rate.range_pct:5.1f}% "
              f"{rate.iqr_pct:5.1f}% {100 * entry['useful_of_peak']:10.1f}% {100 * entry['own_of_peak']:7.1f}% "
              f"{100 * of_round.median:11.1f}% {100 * of_round.low:4.1f}-{100 * of_round.high:<5.1f} "
              f"{100 * of_sustained.median:11.1f}% {100 * of_sustained.low:4.1f}-{100 * of_sustained.high:<5.1f} "
              f"{method.flops / 1e9:7.0f} {entry['peak_mib']:7.0f}  {error}{spec}")  # fmt: skip
    return summary


def compare(methods: dict[str, Method], engines: list[str], tokens: int, max_spread: float) -> dict:
    """Engine / baseline ratios from per-round ratios, each beside the FLOP ratio of the two methods."""
    ratios = {}
    print()
    for engine in engines:
        for base in ("naive", "padded"):
            rates = {name: [tokens / s for s in methods[name].seconds] for name in (engine, base)}
            ratio = spread_of(per_round_ratios(rates[engine], rates[base]))
            refusal = ratio_refusal([ratio, spread_of(rates[engine]), spread_of(rates[base])], max_spread)
            work = methods[base].flops / methods[engine].flops
            entry = {"ratio": ratio.as_dict(), "flop_ratio": work, "refused": refusal, "kernel_factor": None}
            label = f"{engine} / {base}"
            if refusal:
                print(f"{label:24s} {refusal}  (FLOP ratio {work:.2f}x: the speed-up equal efficiency would give)")
            else:
                entry["kernel_factor"] = ratio.median / work
                print(f"{label:24s} {ratio.median:.2f}x (rounds {ratio.low:.2f}-{ratio.high:.2f}x) = "
                      f"{work:.2f}x less work (FLOPs) x {ratio.median / work:.2f}x faster work")  # fmt: skip
            ratios[label] = entry
    return ratios


def main() -> None:
    load_at_start = load_average()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument(
        "--random-shape",
        choices=sorted(SHAPES),
        default=None,
        help="instead of --model: random weights of this shape, built on the device (speed only)",
    )
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--instructions", type=int, default=2, help="8: the workload of issue 12 (4x longer)")
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--response-tokens", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=5, help="each round runs every method once, order rotating")
    parser.add_argument(
        "--max-spread",
        type=float,
        default=MAX_SPREAD_PCT,
        help="largest spread, (max-min)/median in %%, of a ratio or its two rates at which the ratio is printed",
    )
    parser.add_argument("--json", default=None, help="also write every figure, the machine and its load here")
    parser.add_argument("--padded-batch", type=int, default=8, help="pairs per batch of the padded baseline")
    parser.add_argument(
        "--batch-tokens",
        default=None,
        help="the engine's token budget per forward pass; a comma list runs the engine once per value",
    )
    parser.add_argument("--max-row-tokens", default=None, help="a comma list too")
    parser.add_argument(
        "--attention",
        default=None,
        help="the engine's attention: segments, mask, flex or varlen, a comma list too. Default: the device's",
    )
    parser.add_argument(
        "--kernels",
        default=None,
        help="the engine's elementwise kernels: liger, torch or auto, a comma list too. Default: the device's",
    )
    parser.add_argument(
        "--in-flight",
        help="batches launched before the oldest one's sums are read (on a GPU two overlap the next batch's "
        "building with the last one's run), a comma list too. Default: the device's",
    )
    parser.add_argument("--profile", action="store_true", help="then profile one engine run of each setting")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decoder (dynamic shapes) first")
    parser.add_argument(
        "--logits-mib",
        type=int,
        default=None,
        help="memory for one chunk of LM-head logits. Default: the engine's for the device",
    )
    parser.add_argument(
        "--vocab-tiles",
        default=None,
        help="vocabulary entries per LM-head matmul, a comma list for a sweep (the logits budget stays: a smaller "
        "tile gets more rows). Default: the engine's for the device",
    )
    parser.add_argument(
        "--spec-peak-tflops",
        type=float,
        default=None,
        help="the datasheet dense peak in this dtype (H100 SXM bf16: 989): adds MFU against it",
    )
    parser.add_argument("--skip-baselines", action="store_true", help="engine only (e.g. on a large GPU model)")
    parser.add_argument("--memory-case", action="store_true", help="one instruction, 16 candidates x 1,024 tokens")
    parser.add_argument(
        "--alpaca",
        type=int,
        default=None,
        help="real text instead of random tokens: this many AlpacaEval instructions x 15 generators",
    )
    parser.add_argument("--max-chars", type=int, default=None, help="with --alpaca: cut each answer here")
    parser.add_argument(
        "--sustained-seconds",
        type=float,
        default=5.0,
        help="before each round and after the last, besides the best of 5 products: 2,048^3 products back to "
        "back for this long, their FLOPs over their time (useful/rsust)",
    )
    args = parser.parse_args()  # fmt: skip
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.memory_case:
        args.instructions, args.k, args.prompt_tokens, args.response_tokens = 1, 16, 64, 1024
    torch.manual_seed(0)
    if args.random_shape:
        device = resolve_device(args.device)
        loaded = random_model(args.random_shape, resolve_dtype(args.dtype, device), device)
    else:
        loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    model, device = loaded.model, loaded.device
    if args.alpaca:
        groups = alpaca_groups(loaded.tokenizer, args.alpaca, args.max_chars)
        args.instructions, args.k = len(groups), max(len(g.responses) for g in groups)
        args.prompt_tokens = round(sum(len(g.prompt) for g in groups) / len(groups))
        args.response_tokens = round(sum(len(r) for g in groups for r in g.responses) / sum(args.k for _ in groups))
    else:
        groups = make_groups(
            model.config.vocab_size, args.instructions, args.k, args.prompt_tokens, args.response_tokens
        )
    if args.memory_case:  # exactly 1,024 tokens each
        groups = [TokenGroup(g.prompt, [(r * 2)[: args.response_tokens] for r in g.responses]) for g in groups]
    tokens = sum(len(g.prompt) * len(g.responses) + sum(map(len, g.responses)) for g in groups)
    shape = shape_of(model)
    useful = sum(engine_flops(shape, len(g.prompt), [len(r) for r in g.responses]) for g in groups)
    peak = matmul_peak_flops(loaded.dtype, device)
    spec_peak = args.spec_peak_tflops * 1e12 if args.spec_peak_tflops else None
    machine = machine_state(device)
    cpus = f"cpu ({machine['cpus_usable']} usable of {machine['cpus']})"
    where = machine["device"] if device.type == "cuda" else cpus
    print(f"model {loaded.identity['spec']} ({loaded.identity['n_parameters'] / 1e6:.0f}M) {args.dtype} on {where}, "
          f"{machine['torch_threads']} torch threads; {args.instructions} instructions x K={args.k}, "
          f"P={args.prompt_tokens}, R≈{args.response_tokens}; matmul peak measured {peak / 1e9:.0f} GFLOP/s "
          f"(best of 5)", flush=True)  # fmt: skip
    defaults = DEVICE_DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    budgets = [int(b) for b in (args.batch_tokens or str(defaults.batch_tokens)).split(",")]
    row_caps = [int(r) for r in (args.max_row_tokens or str(defaults.max_row_tokens)).split(",")]
    logits = args.logits_mib * 2**20 if args.logits_mib else None
    kinds = (args.attention or defaults.attention).split(",")
    fusions = (args.kernels or defaults.kernels).split(",")
    tiles = [int(t) for t in args.vocab_tiles.split(",")] if args.vocab_tiles else [None]
    depths = [int(d) for d in (args.in_flight or str(defaults.batches_in_flight)).split(",")]
    settings = [EngineSettings(b, r, logits, args.compile, kind, fused, tile, batches_in_flight=depth)
                for depth in depths for tile in tiles for fused in fusions for kind in kinds for r in row_caps
                for b in budgets]  # fmt: skip
    # Warm-up: kernels load and tune on first use, for each batch shape (oneDNN builds a primitive per
    # shape), so the engine gets a full pass per setting; the baselines warm up on a group or two below.
    for setting in settings:
        started = time.perf_counter()
        engine_scores(model, groups, setting)
        print(f"warm-up {time.perf_counter() - started:.1f} s (kernel loading, tuning; compiling with --compile)")
    methods: dict[str, Method] = {}
    lengths = [len(g.prompt) + len(r) for g in groups for r in g.responses]  # of each pair
    if not args.skip_baselines:
        naive_scores(model, groups[:1])  # their own kernels warmed up too
        padded_scores(model, groups[:2], args.padded_batch)
        methods["naive"] = Method(lambda: naive_scores(model, groups), sum(
            naive_flops(shape, len(g.prompt), [len(r) for r in g.responses]) for g in groups))  # fmt: skip
        methods["padded"] = Method(lambda: padded_scores(model, groups, args.padded_batch),
                                   padded_flops(shape, lengths, args.padded_batch))  # fmt: skip
    engines = []
    for setting in settings:
        name = "engine"
        if len(settings) > 1:
            name += f"@{setting.batch_tokens}/{setting.max_row_tokens}"
            name += f"/{setting.attention}" if len(kinds) > 1 else ""
            name += f"/{setting.kernels}" if len(fusions) > 1 else ""
            name += f"/tile {setting.vocab_tile}" if len(tiles) > 1 else ""
            name += f"/in flight {setting.batches_in_flight}" if len(depths) > 1 else ""
        methods[name] = Method(lambda s=setting: engine_scores(model, groups, s),
                               engine_work(shape, groups, setting.max_row_tokens))  # fmt: skip
        engines.append(name)
    loads = {"start": load_at_start, "rounds": [], "after": None}
    print(f"load average (1 min): {load_at_start:.2f} at start", flush=True)
    # before each round and after the last: the VM's peak drifts (bracketing_peaks)
    between_rounds: list[MatmulRates] = []

    def measure_yardsticks() -> None:
        between_rounds.append(matmul_rates(loaded.dtype, device, min_seconds=args.sustained_seconds))

    for r in range(args.rounds):
        measure_yardsticks()
        loads["rounds"].append(load_average())
        order = rotated_order(list(methods), r)
        for name in order:
            timed(methods[name], device)
        print(f"round {r + 1}/{args.rounds} (load {loads['rounds'][-1]:.2f}): "
              + ", ".join(f"{name} {methods[name].seconds[-1]:.2f} s" for name in order)
              + f"; matmul before it: best {between_rounds[-1].best / 1e9:.0f}, "
              f"sustained {between_rounds[-1].sustained / 1e9:.0f} GFLOP/s", flush=True)  # fmt: skip
    measure_yardsticks()
    loads["after"] = load_average()
    print(f"load average (1 min): {load_at_start:.2f} at start, {loads['rounds'][0]:.2f} before the rounds, "
          f"{loads['after']:.2f} after, on {machine['cpus_usable']} CPUs (this benchmark alone keeps "
          f"~{machine['torch_threads']} busy)")  # fmt: skip
    round_peaks, round_sustained, round_window_best = (
        [getattr(rates, name) for rates in between_rounds] for name in ("best", "sustained", "best_of_window")
    )
    yardsticks = [bracketing_peaks(y) for y in (round_peaks, round_sustained, round_window_best)]
    summary = summarise(methods, tokens, useful, peak, groups, spec_peak, *yardsticks)
    ratios = compare(methods, engines, tokens, args.max_spread) if not args.skip_baselines else {}
    if args.json:
        record = {
            "machine": machine,
            "load_average_1min": loads,
            "settings": vars(args),
            "workload": {"pair_tokens": tokens, "instructions": len(groups), "candidates": len(lengths)},
            "matmul_peak_flops": peak,
            "matmul_peaks_between_rounds": round_peaks,
            "matmul_sustained_between_rounds": round_sustained,
            "matmul_window_best_between_rounds": round_window_best,
            "useful_flops": useful,
            "max_spread_pct": args.max_spread,
            "methods": summary,
            "ratios": ratios,
        }
        Path(args.json).write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {args.json}")
    if args.profile:
        for setting in settings:
            print(f"\nprofile of one engine run, {setting}")
            print_profile(lambda s=setting: engine_scores(model, groups, s), device)


if __name__ == "__main__":
    main()
