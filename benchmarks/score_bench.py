"""Scoring speed: grape's engine against two baselines, in one process, on the same pairs.

    .venv/bin/python benchmarks/score_bench.py                       # gemma-3-270m, K=4, P=256, R=64, fp32
    .venv/bin/python benchmarks/score_bench.py --dtype bfloat16
    .venv/bin/python benchmarks/score_bench.py --memory-case         # 16 candidates x 1,024 tokens
    python benchmarks/score_bench.py --random-shape llama-3.1-8b --dtype bfloat16 --instructions 128  # a GPU

Baselines:
  naive   one pair at a time, full forward, full log_softmax over the vocabulary, gather
          (what IFD / Superfiltering-style scripts do);
  padded  pairs right-padded into batches, full logits for every position, log_softmax, gather
          (what reference-log-prob passes in DPO trainers do); no prefix sharing.
Each prints tokens/s (prompt+response tokens of all pairs, the same numerator for all), useful FLOP/s
as a fraction of the matmul peak measured here in the same dtype, peak memory above the loaded model,
and the max |Δ mean_logprob| against the naive reference.
"""

from __future__ import annotations

import argparse
import random
import time

import torch
from measure import matmul_peak_flops, peak_memory, useful_flops
from random_model import SHAPES, random_model

from grape.models.load import load_model, resolve_device, resolve_dtype
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup
from grape.scoring.settings import DEVICE_DEFAULTS


def make_groups(vocab: int, n: int, k: int, prompt: int, response: int, seed: int = 0) -> list[TokenGroup]:
    rng = random.Random(seed)
    draw = lambda length: [rng.randrange(1000, vocab) for _ in range(length)]  # noqa: E731
    # responses vary by up to ±25% around the asked length, as real candidates do
    return [TokenGroup(draw(prompt), [draw(rng.randint(response * 3 // 4, response * 5 // 4)) for _ in range(k)])
            for _ in range(n)]  # fmt: skip


@torch.inference_mode()
def naive_scores(model, groups: list[TokenGroup]) -> list[list[float]]:
    out = []
    for group in groups:
        sums = []
        for response in group.responses:
            ids = torch.tensor([group.prompt + response], device=model.device)
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            rows = torch.arange(len(group.prompt) - 1, ids.shape[1] - 1, device=model.device)
            sums.append(float(logprobs[rows, ids[0, len(group.prompt) :]].sum()))
        out.append(sums)
    return out


@torch.inference_mode()
def padded_scores(model, groups: list[TokenGroup], batch_size: int) -> list[list[float]]:
    pairs = [(g, k) for g in range(len(groups)) for k in range(len(groups[g].responses))]
    out = [[0.0] * len(g.responses) for g in groups]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        seqs = [groups[g].prompt + groups[g].responses[k] for g, k in chunk]
        width = max(map(len, seqs))
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, seq in enumerate(seqs):
            ids[i, : len(seq)], mask[i, : len(seq)] = torch.tensor(seq), 1
        ids, mask = ids.to(model.device), mask.to(model.device)
        logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        for i, (g, k) in enumerate(chunk):
            p, r = len(groups[g].prompt), len(groups[g].responses[k])
            rows = torch.arange(p - 1, p - 1 + r, device=model.device)
            out[g][k] = float(logprobs[i, rows, ids[i, p : p + r]].sum())
    return out


def engine_scores(model, groups: list[TokenGroup], settings: EngineSettings) -> list[list[float]]:
    return [r.sum_logprob.tolist() for r in ScoringEngine(model, settings).score(groups)]


def run(name, fn, groups, reference, flops_needed, peak, tokens, device, spec_peak=None) -> dict:
    memory: dict = {}
    with peak_memory(memory, device):
        started = time.perf_counter()
        sums = fn()  # every method returns Python floats, so its GPU work has finished here
        seconds = time.perf_counter() - started
    error = 0.0
    if reference is not None:
        for g, group in enumerate(groups):
            for k, response in enumerate(group.responses):
                error = max(error, abs(sums[g][k] - reference[g][k]) / len(response))
    result = {
        "name": name,
        "seconds": seconds,
        "tokens_per_s": tokens / seconds,
        "mfu": flops_needed / seconds / peak,
        "peak_mib": memory["peak_delta"] / 2**20,
        "max_err": error,
    }
    spec = f"  MFU {100 * flops_needed / seconds / spec_peak:5.1f}% of spec" if spec_peak else ""
    print(f"{name:14s} {seconds:8.2f} s {result['tokens_per_s']:10.0f} tok/s  useful {100 * result['mfu']:5.1f}% "
          f"of measured peak{spec}  +{result['peak_mib']:7.0f} MiB  max|Δmean| {error:.2e}", flush=True)  # fmt: skip
    return {**result, "sums": sums}


def main() -> None:
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
    parser.add_argument("--instructions", type=int, default=8)
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--response-tokens", type=int, default=64)
    parser.add_argument("--padded-batch", type=int, default=8, help="pairs per batch of the padded baseline")
    parser.add_argument(
        "--batch-tokens",
        default=None,
        help="the engine's token budget per forward pass; a comma list runs the engine once per value",
    )
    parser.add_argument("--max-row-tokens", default=None, help="a comma list too")
    parser.add_argument("--profile", action="store_true", help="then profile one engine run (first setting)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the decoder (dynamic shapes) first")
    parser.add_argument(
        "--logits-mib",
        type=int,
        default=None,
        help="memory for one chunk of LM-head logits. Default: the engine's for the device",
    )
    parser.add_argument(
        "--spec-peak-tflops",
        type=float,
        default=None,
        help="the datasheet dense peak in this dtype (H100 SXM bf16: 989): adds MFU against it",
    )
    parser.add_argument("--skip-baselines", action="store_true", help="engine only (e.g. on a large GPU model)")
    parser.add_argument("--memory-case", action="store_true", help="one instruction, 16 candidates x 1,024 tokens")
    args = parser.parse_args()  # fmt: skip
    if args.memory_case:
        args.instructions, args.k, args.prompt_tokens, args.response_tokens = 1, 16, 64, 1024
    torch.manual_seed(0)
    if args.random_shape:
        device = resolve_device(args.device)
        loaded = random_model(args.random_shape, resolve_dtype(args.dtype, device), device)
    else:
        loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    model, device = loaded.model, loaded.device
    groups = make_groups(model.config.vocab_size, args.instructions, args.k, args.prompt_tokens, args.response_tokens)
    if args.memory_case:  # exactly 1,024 tokens each
        groups = [TokenGroup(g.prompt, [(r * 2)[: args.response_tokens] for r in g.responses]) for g in groups]
    tokens = sum(len(g.prompt) * len(g.responses) + sum(map(len, g.responses)) for g in groups)
    flops = sum(useful_flops(model, len(g.prompt), [len(r) for r in g.responses]) for g in groups)
    peak = matmul_peak_flops(loaded.dtype, device)
    spec_peak = args.spec_peak_tflops * 1e12 if args.spec_peak_tflops else None
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    print(f"model {loaded.identity['spec']} ({loaded.identity['n_parameters'] / 1e6:.0f}M) {args.dtype} on {where}; "
          f"{args.instructions} instructions x K={args.k}, P={args.prompt_tokens}, R≈{args.response_tokens}; "
          f"matmul peak measured {peak / 1e9:.0f} GFLOP/s", flush=True)  # fmt: skip
    defaults = DEVICE_DEFAULTS["cuda" if device.type == "cuda" else "cpu"]
    budgets = [int(b) for b in (args.batch_tokens or str(defaults.batch_tokens)).split(",")]
    row_caps = [int(r) for r in (args.max_row_tokens or str(defaults.max_row_tokens)).split(",")]
    logits = args.logits_mib * 2**20 if args.logits_mib else None
    settings = [EngineSettings(b, r, logits, args.compile) for r in row_caps for b in budgets]
    # Warm-up: kernels load and tune on first use. A GPU gets a full pass per setting (it is quick);
    # a CPU one group (its first pass would take minutes).
    for setting in settings if device.type == "cuda" else settings[:1]:
        started = time.perf_counter()
        engine_scores(model, groups if device.type == "cuda" else groups[:1], setting)
        print(f"warm-up {time.perf_counter() - started:.1f} s (kernel loading, tuning; compiling with --compile)")
    measured = (flops, peak, tokens, device, spec_peak)
    results = {}
    reference = None
    if not args.skip_baselines:
        naive_scores(model, groups[:1])  # its own kernels warmed up too
        padded_scores(model, groups[:2], args.padded_batch)
        results["naive"] = run("naive", lambda: naive_scores(model, groups), groups, None, *measured)
        reference = results["naive"]["sums"]
        results["padded"] = run("padded", lambda: padded_scores(model, groups, args.padded_batch), groups, reference,
                                *measured)  # fmt: skip
    for setting in settings:
        name = f"engine@{setting.batch_tokens}/{setting.max_row_tokens}" if len(settings) > 1 else "engine"
        results[name] = run(name, lambda s=setting: engine_scores(model, groups, s), groups, reference, *measured)
        if not args.skip_baselines:
            rate = results[name]["tokens_per_s"]
            print(f"  {name} / naive  {rate / results['naive']['tokens_per_s']:.2f}x   "
                  f"{name} / padded {rate / results['padded']['tokens_per_s']:.2f}x")  # fmt: skip
    if args.profile:
        print_profile(lambda: engine_scores(model, groups, settings[0]), device)


def print_profile(fn, device: torch.device, rows: int = 15) -> None:
    """Where the engine's time goes: the operators that took most device (or CPU) time in one run."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fn()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))


if __name__ == "__main__":
    main()
