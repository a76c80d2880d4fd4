"""Transfer Q* on AlpacaEval (issue 18): reward-guided decoding of smollm2-135m-instruct against greedy decoding,
best-of-n and ARGS, judged by a reward model trained on instructions no other part saw. Design and pass
criterion: experiments/transfer_q/README.md. Each stage is the `grape` command a user would type; finished
stages are marked and skipped, and decoding goes in chunks of prompts, so a killed run loses one chunk at most.

  .venv/bin/python experiments/transfer_q/run.py --out /work/transfer-q
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
from pathlib import Path

from grape.decoding.reward import PlainRewardScorer, load_reward_model
from grape.evaluation.metrics import mean_t_interval, wilson_interval

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/stages.py
from stages import grape_command as grape  # noqa: E402
from stages import once  # noqa: E402

ALPACA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "alpaca_eval" / "model_outputs.jsonl"
STRONG, WEAK = "gpt4_1106_preview", "alpaca-7b"
PARTS = ("reward", "baseline", "judge", "prompts")  # disjoint instruction sets, in this order


def write_data(folder: Path, sizes: dict[str, int], max_chars: int) -> dict[str, Path]:
    """Pairs (strong answer chosen, weak one rejected) for the three trained parts and the held-out prompts, on
    disjoint instructions (seed 0) whose two answers are both at most ``max_chars`` long."""
    folder.mkdir(parents=True, exist_ok=True)
    answers: dict[str, dict[str, str]] = {}
    for row in map(json.loads, ALPACA.read_text().splitlines()):
        answers.setdefault(row["instruction"], {})[row["generator"]] = row["output"]
    usable = sorted(i for i, a in answers.items() if all(0 < len(a.get(g, "")) <= max_chars for g in (STRONG, WEAK)))
    random.Random(0).shuffle(usable)
    files, start = {}, 0
    for part in PARTS:
        chosen = usable[start : start + sizes[part]]
        start += sizes[part]
        rows = [{"id": f"alpaca-{start - len(chosen) + k}", "prompt": i, "chosen": answers[i][STRONG],
                 "rejected": answers[i][WEAK]} for k, i in enumerate(chosen)]  # fmt: skip
        if part == "prompts":
            rows = [{"id": r["id"], "prompt": r["prompt"]} for r in rows]
        files[part] = folder / f"{part}.jsonl"
        files[part].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return files


def distinct_2(texts: list[str]) -> float:
    """Distinct bigrams over all bigrams of a method's responses (whitespace words)."""
    bigrams = [tuple(w[i : i + 2]) for w in (t.split() for t in texts) for i in range(len(w) - 1)]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


def judged(judge, rows: list[dict]) -> list[float]:
    scorer, out = PlainRewardScorer(judge), []
    for row in rows:
        scorer.start(row["prompt"])
        out.append(float(scorer.score([row["response"]], [row.get("finish_reason") in ("eos", "stop")])[0]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=150, help="pairs for each of r, ρ_BL and the judge")
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--max-chars", type=int, default=1200)
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--chunk", type=int, default=5, help="prompts per decoding run (the unit a re-run resumes)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    out = args.out
    sizes = {"reward": args.pairs, "baseline": args.pairs, "judge": args.pairs, "prompts": args.prompts}
    files = write_data(out / "data", sizes, args.max_chars)
    common = ["--template", "chat", "--device", args.device]
    once(
        out / "rm.done",
        grape,
        "reward-model",
        files["reward"],
        "-o",
        out / "rm",
        "--model",
        args.model,
        "--epochs",
        "1",
        *common,
    )
    once(
        out / "judge.done",
        grape,
        "reward-model",
        files["judge"],
        "-o",
        out / "judge",
        "--model",
        args.model,
        "--epochs",
        "1",
        "--seed",
        "1",
        *common,
    )
    once(
        out / "dpo.done",
        grape,
        "dpo",
        files["baseline"],
        "-o",
        out / "dpo",
        "--model",
        args.model,
        "--lora-r",
        "16",
        "--lr",
        "5e-5",
        "--epochs",
        "1",
        *common,
    )
    methods = {
        "greedy-sft": ["--method", "greedy", "--model", args.model],
        "greedy-baseline": ["--method", "greedy", "--model", out / "dpo"],
        "bon": ["--method", "bon", "--model", args.model, "--reward", out / "rm", "-n", "4"],
        "args": ["--method", "args", "--model", args.model, "--reward", out / "rm"],
        "tq": ["--method", "tq", "--model", args.model, "--baseline", out / "dpo", "--reward", out / "rm"],
    }
    prompts = files["prompts"].read_text().splitlines()
    for start in range(0, len(prompts), args.chunk):
        chunk = out / "data" / f"prompts-{start:04d}.jsonl"
        chunk.write_text("".join(line + "\n" for line in prompts[start : start + args.chunk]))
        for name, flags in methods.items():
            target = out / name / f"decoded-{start:04d}.jsonl"
            once(
                target.with_suffix(".done"),
                grape,
                "decode",
                chunk,
                "-o",
                target,
                *flags,
                "--max-new-tokens",
                args.max_new_tokens,
                *common,
            )
    judge = load_reward_model(str(out / "judge"), device=args.device)
    decoded = {name: [json.loads(line) for f in sorted((out / name).glob("decoded-*.jsonl"))
                      for line in f.read_text().splitlines()] for name in methods}  # fmt: skip
    rewards = {name: judged(judge, rows) for name, rows in decoded.items()}
    table = {}
    for name, rows in decoded.items():
        mean, half = mean_t_interval(rewards[name])
        paired = [a - b for a, b in zip(rewards[name], rewards["greedy-sft"], strict=True)]
        wins = sum(d > 0 for d in paired)
        per_token = [r["sft_logprob"] / r["n_tokens"] for r in rows if r.get("n_tokens")]
        table[name] = {"prompts": len(rows), "judge_reward": mean, "judge_reward_half_ci": half,
                       "minus_greedy": mean_t_interval(paired) if name != "greedy-sft" else None,
                       "wins_over_greedy": wins, "win_rate_ci95": wilson_interval(wins, len(rows)),
                       "sft_logprob_per_token": statistics.fmean(per_token) if per_token else None,
                       "distinct_2": distinct_2([r["response"] for r in rows])}  # fmt: skip
    (out / "results.json").write_text(json.dumps(table, indent=1) + "\n")
    for name, t in table.items():
        print(f"{name:16s} judge {t['judge_reward']:+.3f} ± {t['judge_reward_half_ci']:.3f}  wins "
              f"{t['wins_over_greedy']}/{t['prompts']}  log π_sft/token {t['sft_logprob_per_token']}  "
              f"distinct-2 {t['distinct_2']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
