"""Transfer Q* decoding speed: the cached decoder against the plain recomputing loop (tokens/s and the ratio).

  .venv/bin/python benchmarks/decode_speed.py --rounds 3 --prompts 2 --max-new-tokens 8 --threads 1

π_sft and ρ_BL are --model (smollm2-135m-instruct: the same weights serve for speed), r is a one-output head on
the same model (a random head: only its cost matters); the prompts are the first --prompts AlpacaEval
instructions (../shared/data/alpaca_eval/model_outputs.jsonl; a fixed pair of prompts when it is absent) in the
chat template (``--min-prompt-tokens N``: the first of at least N tokens, for longer prefixes). Defaults as the
released code: k = 10 candidates, one greedy rollout of 20 tokens each, α = 1.

The plain loop is what the released code does at each step: a full forward pass of π_sft over the whole
prefix, ρ_BL's rollouts by transformers' ``generate`` from [prefix, z] for each of the k candidates (the prefix
computed k times), and the reward model over every whole text. The cached decoder keeps π_sft's and ρ_BL's
prefix caches across steps, starts the k rollouts from a copy of ρ_BL's cache, and reads rewards from a cache
of the text the k rows share. Each round decodes every prompt with both, in rotated order; their choices
must be equal and Q̂ agree within 1e-4 (fp32), or the script stops. Printed: tokens/s of each per round
(median and spread), the per-round ratio, each model's work (token positions computed), the load average
before and after every timing, and the machine.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import load_average, machine_state  # noqa: E402
from round_stats import per_round_ratios, ratio_refusal, rotated_order, spread_of  # noqa: E402

from grape.decoding.decoder import Decoder  # noqa: E402
from grape.decoding.reward import RewardModel  # noqa: E402
from grape.decoding.settings import DecodeSettings  # noqa: E402
from grape.models.load import load_model, resolve_model_dir  # noqa: E402

ALPACA = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_eval" / "model_outputs.jsonl"
FALLBACK = ["Give three tips for staying healthy.", "Explain why the sky is blue to a ten-year-old."]
PATHS = ("cached", "plain")


def prompts(count: int, min_tokens: int, tokenizer) -> tuple[list[str], str]:
    """The first ``count`` AlpacaEval instructions of at least ``min_tokens`` tokens (as the tokenizer splits them)."""
    if not ALPACA.is_file():
        return FALLBACK[:count], "fixed prompts (AlpacaEval data absent)"
    seen: list[str] = []
    with ALPACA.open(encoding="utf-8") as handle:
        for line in handle:
            instruction = json.loads(line)["instruction"]
            long_enough = len(tokenizer(instruction)["input_ids"]) >= min_tokens
            if instruction not in seen and long_enough:
                seen.append(instruction)
            if len(seen) == count:
                break
    lengths = f", the first of at least {min_tokens} tokens" if min_tokens else ""
    return seen, f"first {len(seen)} AlpacaEval instructions{lengths}"


def reward_on(model_name: str, dtype: torch.dtype, device: torch.device, tokenizer) -> RewardModel:
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(0)
    head = AutoModelForSequenceClassification.from_pretrained(
        resolve_model_dir(model_name)[0], num_labels=1, dtype=dtype, attn_implementation="sdpa"
    )
    return RewardModel(head.to(device).eval(), tokenizer, "chat", True, {"spec": f"{model_name} + random head"})


def same_choices(a, b, tolerance: float = 1e-4) -> None:
    """Stop unless both paths took the same tokens with Q̂ within ``tolerance``."""
    if a.tokens != b.tokens:
        raise SystemExit(f"the paths chose differently: {a.tokens} vs {b.tokens}")
    for one, other in zip(a.steps, b.steps, strict=True):
        gap = max(abs(x - y) for x, y in zip(one.values, other.values, strict=True))
        if gap > tolerance:
            raise SystemExit(f"Q̂ differs by {gap:.2e} > {tolerance:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--prompts", type=int, default=2)
    parser.add_argument("--min-prompt-tokens", type=int, default=0, help="take longer instructions (longer prefixes)")
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--rollout-tokens", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, "float32", args.device)
    reward = reward_on(args.model, torch.float32, loaded.device, loaded.tokenizer)
    texts, source = prompts(args.prompts, args.min_prompt_tokens, loaded.tokenizer)
    prefix = [len(Decoder(DecodeSettings(template="chat"), loaded).renderer.generation_ids(t)) for t in texts]
    common = dict(method="tq", model=args.model, baseline=args.model, reward="r", template="chat",
                  top_k=args.top_k, rollout_tokens=args.rollout_tokens, max_new_tokens=args.max_new_tokens)  # fmt: skip
    decoders = {path: Decoder(DecodeSettings(**common, cache=path == "cached"), loaded, loaded, reward)
                for path in PATHS}  # fmt: skip
    for decoder in decoders.values():  # warm-up: one short decode each
        decoder.settings.max_new_tokens = 1
        decoder.decode(texts[0])
        decoder.settings.max_new_tokens = args.max_new_tokens
    rounds = []
    for index in range(args.rounds):
        done, row = {}, {}
        for path in rotated_order(PATHS, index):
            before = load_average()
            work_before = decoders[path].work()
            started = time.perf_counter()
            done[path] = [decoders[path].decode(text) for text in texts]
            seconds = time.perf_counter() - started
            tokens = sum(len(d.tokens) + (d.finish_reason == "stop") for d in done[path])  # steps decoded
            work = {k: v - work_before.get(k, 0) for k, v in decoders[path].work().items()}
            row[path] = {"seconds": seconds, "steps": tokens, "tok_s": tokens / seconds, "work": work,
                         "load_before": before, "load_after": load_average()}  # fmt: skip
        for a, b in zip(done["cached"], done["plain"], strict=True):
            same_choices(a, b)
        rounds.append(row)
        print(json.dumps({"round": index, **row}), file=sys.stderr, flush=True)
    cached = [r["cached"]["tok_s"] for r in rounds]
    plain = [r["plain"]["tok_s"] for r in rounds]
    ratios = per_round_ratios(cached, plain)
    spreads = [spread_of(cached), spread_of(plain), spread_of(ratios)]
    summary = {
        "benchmark": "decode_speed", "model": args.model, "prompts": source, "prompt_count": len(texts),
        "prompt_ids": prefix,
        "top_k": args.top_k, "rollout_tokens": args.rollout_tokens, "max_new_tokens": args.max_new_tokens,
        "machine": machine_state(loaded.device), "rounds": rounds,
        "cached_tok_s": spreads[0].as_dict(), "plain_tok_s": spreads[1].as_dict(), "ratio": spreads[2].as_dict(),
        "ratio_refused": ratio_refusal(spreads), "choices_equal": True,
    }  # fmt: skip
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"cached {spreads[0].median:.3f} tok/s ({spreads[0].low:.3f}-{spreads[0].high:.3f}), plain "
          f"{spreads[1].median:.3f} tok/s ({spreads[1].low:.3f}-{spreads[1].high:.3f}), ratio {spreads[2].median:.2f}x "
          f"({spreads[2].low:.2f}-{spreads[2].high:.2f}); choices equal in every round", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main()
