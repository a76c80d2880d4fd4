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

import torch

from grape.decoding.reward import PlainRewardScorer, load_reward_model
from grape.evaluation.metrics import mean_t_interval, wilson_interval
from grape.models.load import load_model
from grape.text import Renderer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/stages.py
from stages import grape_command as grape  # noqa: E402
from stages import once  # noqa: E402

ALPACA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "alpaca_eval" / "model_outputs.jsonl"
STRONG, WEAK = "gpt4_1106_preview", "alpaca-7b"
PARTS = ("reward", "baseline", "judge", "prompts")  # disjoint instruction sets, in this order
TEMPLATE = "chat"  # π_sft's and ρ_BL's prompts, and what r and the judge are trained to read


def opening(text: str, chars: int) -> str:
    """The first ``chars`` characters of ``text`` or fewer, cut at the last whitespace (the whole text if shorter)."""
    if len(text) <= chars:
        return text
    words = text[: chars + 1].rsplit(None, 1)  # the character after the cut tells whether a word ends there
    return words[0].rstrip() if len(words) == 2 else text[:chars]


def write_data(folder: Path, sizes: dict[str, int], max_chars: int, opening_chars: int) -> dict[str, Path]:
    """Pairs (strong answer chosen, weak one rejected) for the three trained parts and the held-out prompts, on
    disjoint instructions (seed 0) whose two answers are both at most ``max_chars`` long. The reward model's and
    the judge's pairs hold the answers' openings (``opening_chars``): what a capped decode gives them to read."""
    folder.mkdir(parents=True, exist_ok=True)
    answers: dict[str, dict[str, str]] = {}
    for row in map(json.loads, ALPACA.read_text().splitlines()):
        answers.setdefault(row["instruction"], {})[row["generator"]] = row["output"]
    usable = sorted(i for i, a in answers.items() if all(0 < len(a.get(g, "")) <= max_chars for g in (STRONG, WEAK)))
    if len(usable) < sum(sizes.values()):  # else the last parts come out short or empty, silently
        raise SystemExit(f"{len(usable)} instructions have both answers within {max_chars} characters, fewer than "
                         f"the {sum(sizes.values())} the parts need ({sizes}): lower --pairs/--prompts or raise "
                         "--max-chars")  # fmt: skip
    random.Random(0).shuffle(usable)
    files, start = {}, 0
    for part in PARTS:
        chosen = usable[start : start + sizes[part]]
        start += sizes[part]
        cut = (lambda t: opening(t, opening_chars)) if part in ("reward", "judge") else (lambda t: t)
        rows = [{"id": f"alpaca-{start - len(chosen) + k}", "prompt": i, "chosen": cut(answers[i][STRONG]),
                 "rejected": cut(answers[i][WEAK])} for k, i in enumerate(chosen)]  # fmt: skip
        if part == "prompts":
            rows = [{"id": r["id"], "prompt": r["prompt"]} for r in rows]
        files[part] = folder / f"{part}.jsonl"
        files[part].write_text("".join(json.dumps(r) + "\n" for r in rows))
    return files


def distinct_2(texts: list[str]) -> float:
    """Distinct bigrams over all bigrams of a method's responses (whitespace words)."""
    bigrams = [tuple(w[i : i + 2]) for w in (t.split() for t in texts) for i in range(len(w) - 1)]
    return len(set(bigrams)) / len(bigrams) if bigrams else 0.0


@torch.inference_mode()
def sft_logprob_per_token(policy, rows: list[dict]) -> list[float]:
    """Mean log π_sft per token of each response (those of no token left out), all methods measured alike: the
    response's ids as the renderer splits prompt + response (no end marker), scored by π_sft. Not the decode
    output's ``sft_logprob``: that is the log-prob under the decoding run's own --model, which for
    greedy-baseline is ρ_BL, not π_sft."""
    renderer, out = Renderer(policy.tokenizer, TEMPLATE, eos=False), []
    for row in rows:
        encoded = renderer.encode(row["prompt"], [row["response"]])[0]
        if not encoded.response:
            continue
        ids = torch.tensor([encoded.prompt + encoded.response], device=policy.device)
        logprobs = torch.log_softmax(policy.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        n = len(encoded.response)
        out.append(float(logprobs[-n:].gather(1, ids[0, -n:, None]).sum()) / n)
    return out


def same_settings(out: Path, settings: dict) -> None:
    """A re-run continues only the run it began: other sizes or chunks would mix data, models and chunks (before
    any stage finished, the settings may still change)."""
    path = out / "settings.json"
    if path.is_file() and json.loads(path.read_text()) != settings and any(out.rglob("*.done")):
        raise SystemExit(f"{path}: this run was begun with other settings; use another --out")
    out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=1) + "\n")


def judged(judge, rows: list[dict]) -> list[float]:
    scorer, out = PlainRewardScorer(judge), []
    for row in rows:
        scorer.start(row["prompt"])
        out.append(float(scorer.score([row["response"]], [row.get("finish_reason") in ("eos", "stop")])[0]))
    return out


def pair_accuracy(model, pairs: Path) -> dict:
    """How often ``model`` rewards a pair's chosen (strong) answer above its rejected (weak) one, on pairs it was not
    trained on, with a Wilson interval: whether r and the judge agree with the labels, and so with each other."""
    scorer, right, rows = PlainRewardScorer(model), 0, [json.loads(line) for line in pairs.read_text().splitlines()]
    for row in rows:
        scorer.start(row["prompt"])
        chosen, rejected = scorer.score([row["chosen"], row["rejected"]], [False, False]).tolist()
        right += chosen > rejected
    return {"pairs": len(rows), "accuracy": right / len(rows), "ci95": wilson_interval(right, len(rows))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--pairs", type=int, default=150, help="pairs for each of r, ρ_BL and the judge")
    parser.add_argument("--prompts", type=int, default=20)
    parser.add_argument("--max-chars", type=int, default=2500)
    parser.add_argument("--opening-chars", type=int, default=200, help="r's and the judge's answers: their openings")
    parser.add_argument("--max-new-tokens", type=int, default=48)
    parser.add_argument("--chunk", type=int, default=5, help="prompts per decoding run (the unit a re-run resumes)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    out = args.out
    same_settings(out, {k: v for k, v in vars(args).items() if k not in ("out", "device")})
    sizes = {"reward": args.pairs, "baseline": args.pairs, "judge": args.pairs, "prompts": args.prompts}
    files = write_data(out / "data", sizes, args.max_chars, args.opening_chars)
    common = ["--template", TEMPLATE, "--device", args.device]
    # the trainings' activations (prompts up to ~450 tokens, answers up to 2,500 characters) would need 13-20 GB
    # without checkpointing: the first launch was OOM-killed; checkpointing changes no weight (tests)
    training = [*common, "--gradient-checkpointing"]
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
        "--no-eos",
        *training,
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
        "--no-eos",
        *training,
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
        "2e-4",
        "--epochs",
        "2",
        "--save-steps",
        "8",  # 38 steps of about 2 minutes on the CPU: a killed run resumes from its last 8
        *training,
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
    # openings, unfinished (no end marker), as both were trained: each model on the other's training pairs
    agreement = {"judge_on_reward_pairs": pair_accuracy(judge, files["reward"]),
                 "reward_on_judge_pairs": pair_accuracy(load_reward_model(str(out / "rm"), device=args.device),
                                                        files["judge"])}  # fmt: skip
    decoded = {name: [json.loads(line) for f in sorted((out / name).glob("decoded-*.jsonl"))
                      for line in f.read_text().splitlines()] for name in methods}  # fmt: skip
    rewards = {name: judged(judge, rows) for name, rows in decoded.items()}
    del judge
    policy = load_model(args.model, device=args.device)
    per_token = {name: sft_logprob_per_token(policy, rows) for name, rows in decoded.items()}
    table = {}
    for name, rows in decoded.items():
        mean, half = mean_t_interval(rewards[name])
        paired = [a - b for a, b in zip(rewards[name], rewards["greedy-sft"], strict=True)]
        wins = sum(d > 0 for d in paired)
        table[name] = {"prompts": len(rows), "judge_reward": mean, "judge_reward_half_ci": half,
                       "minus_greedy": mean_t_interval(paired) if name != "greedy-sft" else None,
                       "wins_over_greedy": wins, "ties_with_greedy": sum(d == 0 for d in paired),
                       "win_rate_ci95": wilson_interval(wins, len(rows)),
                       "sft_logprob_per_token": statistics.fmean(per_token[name]) if per_token[name] else None,
                       "distinct_2": distinct_2([r["response"] for r in rows])}  # fmt: skip
    # is ρ_BL aligned at all? its DPO training: reward accuracy in the last logged step, loss first and last
    trained = json.loads((out / "dpo" / "grape-dpo.json").read_text())["metrics"]
    table["baseline_training"] = {k: trained[k] for k in ("steps", "reward_accuracy_last", "loss_first", "loss_last")}
    table["held_out_pair_accuracy"] = agreement
    (out / "results.json").write_text(json.dumps(table, indent=1) + "\n")
    print(f"ρ_BL's DPO: {table['baseline_training']}")
    print(f"held-out pair accuracy: {agreement}")
    for name, t in ((n, t) for n, t in table.items() if n in methods):
        print(f"{name:16s} judge {t['judge_reward']:+.3f} ± {t['judge_reward_half_ci']:.3f}  wins "
              f"{t['wins_over_greedy']}/{t['prompts']}  log π_sft/token {t['sft_logprob_per_token']}  "
              f"distinct-2 {t['distinct_2']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
