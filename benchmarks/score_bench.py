"""Scoring speed: grape's engine against two baselines, in one process, on the same pairs.

    .venv/bin/python benchmarks/score_bench.py                       # gemma-3-270m, K=4, P=256, R=64, fp32
    .venv/bin/python benchmarks/score_bench.py --dtype bfloat16
    .venv/bin/python benchmarks/score_bench.py --memory-case         # 16 candidates x 1,024 tokens

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
from measure import matmul_peak_flops, peak_rss, useful_flops

from grape.models.load import load_model
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup


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
        logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        for i, (g, k) in enumerate(chunk):
            p, r = len(groups[g].prompt), len(groups[g].responses[k])
            rows = torch.arange(p - 1, p - 1 + r)
            out[g][k] = float(logprobs[i, rows, ids[i, p : p + r]].sum())
    return out


def engine_scores(model, groups: list[TokenGroup], settings: EngineSettings) -> list[list[float]]:
    return [r.sum_logprob.tolist() for r in ScoringEngine(model, settings).score(groups)]


def run(name, fn, groups, reference, flops_needed, peak, tokens) -> dict:
    memory: dict = {}
    with peak_rss(memory):
        started = time.perf_counter()
        sums = fn()
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
    print(f"{name:8s} {seconds:8.2f} s {result['tokens_per_s']:10.0f} tok/s  useful {100 * result['mfu']:5.1f}% "
          f"of peak  +{result['peak_mib']:7.0f} MiB  max|Δmean| {error:.2e}", flush=True)  # fmt: skip
    return {**result, "sums": sums}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--instructions", type=int, default=8)
    parser.add_argument("-k", type=int, default=4)
    parser.add_argument("--prompt-tokens", type=int, default=256)
    parser.add_argument("--response-tokens", type=int, default=64)
    parser.add_argument("--padded-batch", type=int, default=8, help="pairs per batch of the padded baseline")
    parser.add_argument("--batch-tokens", type=int, default=EngineSettings.batch_tokens)
    parser.add_argument("--max-row-tokens", type=int, default=EngineSettings.max_row_tokens)
    parser.add_argument("--skip-baselines", action="store_true", help="engine only (e.g. on a large GPU model)")
    parser.add_argument("--memory-case", action="store_true", help="one instruction, 16 candidates x 1,024 tokens")
    args = parser.parse_args()
    if args.memory_case:
        args.instructions, args.k, args.prompt_tokens, args.response_tokens = 1, 16, 64, 1024
    torch.manual_seed(0)
    loaded = load_model(args.model, dtype=args.dtype, device=args.device)
    model = loaded.model
    groups = make_groups(model.config.vocab_size, args.instructions, args.k, args.prompt_tokens, args.response_tokens)
    if args.memory_case:  # exactly 1,024 tokens each
        groups = [TokenGroup(g.prompt, [(r * 2)[: args.response_tokens] for r in g.responses]) for g in groups]
    tokens = sum(len(g.prompt) * len(g.responses) + sum(map(len, g.responses)) for g in groups)
    flops = sum(useful_flops(model, len(g.prompt), [len(r) for r in g.responses]) for g in groups)
    peak = matmul_peak_flops(loaded.dtype, loaded.device)
    print(f"model {args.model} ({loaded.identity['n_parameters'] / 1e6:.0f}M) {args.dtype} on {loaded.device}; "
          f"{args.instructions} instructions x K={args.k}, P={args.prompt_tokens}, R≈{args.response_tokens}; "
          f"matmul peak {peak / 1e9:.0f} GFLOP/s; threads {torch.get_num_threads()}", flush=True)  # fmt: skip
    settings = EngineSettings(batch_tokens=args.batch_tokens, max_row_tokens=args.max_row_tokens)
    engine_scores(model, groups[:1], settings)  # warm-up (oneDNN kernels, allocator)
    results = {}
    reference = None
    if not args.skip_baselines:
        results["naive"] = run("naive", lambda: naive_scores(model, groups), groups, None, flops, peak, tokens)
        reference = results["naive"]["sums"]
        results["naive"]["max_err"] = 0.0
        results["padded"] = run("padded", lambda: padded_scores(model, groups, args.padded_batch), groups, reference,
                                flops, peak, tokens)  # fmt: skip
    results["engine"] = run("engine", lambda: engine_scores(model, groups, settings), groups, reference, flops, peak,
                            tokens)  # fmt: skip
    if not args.skip_baselines:
        e = results["engine"]["tokens_per_s"]
        print(f"engine / naive  {e / results['naive']['tokens_per_s']:.2f}x")
        print(f"engine / padded {e / results['padded']['tokens_per_s']:.2f}x")


if __name__ == "__main__":
    main()
