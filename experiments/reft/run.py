"""ReFT on SVAMP (issue 16): an SFT warm-up on chains of thought, then, from the same checkpoint, more SFT
(matched in question visits), PPO with the answer reward (ReFT) and GRPO. Design and pass criterion:
experiments/reft/README.md. Every stage's output is kept under --out; a finished stage is skipped on a re-run
(the stages also resume inside: SFT and RL from their checkpoints), so the run is resumable at any point.

  .venv/bin/python experiments/reft/run.py --out /work/reft
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import grape
from grape.budgeting.results import states_final_answer
from grape.evaluation.metrics import mcnemar_exact, wilson_interval
from grape.rl.run import rl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/stages.py
from stages import finished, once  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "svamp"


def write_data(folder: Path, train: int, test: int) -> dict[str, Path]:
    """warmup.jsonl (prompt, completion = the gold N-CoT), questions.jsonl (prompt, answer = the gold value) on the
    same first ``train`` shuffled training rows; test.jsonl, the first ``test`` shuffled test rows (seed 0)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = {name: [json.loads(line) for line in (SHARED / f"{name}.jsonl").read_text().splitlines()]
            for name in ("train_nl", "test")}  # fmt: skip
    for listed in rows.values():
        random.Random(0).shuffle(listed)
    files = {
        "warmup": [{"id": r["item_id"], "prompt": r["question"], "completion": r["answer_cot"]}
                   for r in rows["train_nl"][:train]],
        "questions": [{"id": r["item_id"], "prompt": r["question"], "answer": r["answer_value"]}
                      for r in rows["train_nl"][:train]],
        "test": [{"id": r["item_id"], "question": r["question"], "answer": r["answer_value"]}
                 for r in rows["test"][:test]],
    }  # fmt: skip
    for name, listed in files.items():
        (folder / f"{name}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in listed))
    return {name: folder / f"{name}.jsonl" for name in files}


def evaluate(args, model: Path, folder: Path, test: Path) -> dict:
    """Accuracy (Wilson interval) and the share of answers that state a final answer, on the test items."""
    done = folder / "eval.json"
    if not done.exists():
        # static batches, as the arms measured before continuous batching existed
        rows, summary = grape.evaluate(test, folder / "test.eval.jsonl", model=str(model), template="chat",
                                       verifier="number", max_new_tokens=args.max_new_tokens,
                                       device=args.device, batching="static")  # fmt: skip
        correct = sum(r.get("correct") is True for r in rows)  # every item has a gold value: judged == items
        stated = sum(states_final_answer(r.get("response")) for r in rows)
        result = {"correct": correct, "items": len(rows), "accuracy": correct / len(rows),
                  "ci95": wilson_interval(correct, len(rows)), "unjudged": summary["unjudged"],
                  "stated": stated, "stated_rate": stated / len(rows),
                  "stated_ci95": wilson_interval(stated, len(rows)),
                  "right": {r["id"]: bool(r.get("correct")) for r in rows}}  # fmt: skip
        done.write_text(json.dumps(result) + "\n")
    return json.loads(done.read_text())


def compare(results: Path) -> list[dict]:
    """The pre-registered comparisons per seed (README: pass criterion): ppo and grpo against sft-more, and
    whether the warm-up is at the floor (accuracy under 5%)."""
    rows = {(r["arm"], r["seed"]): r for r in map(json.loads, results.read_text().splitlines())}
    out = []
    for (arm, seed), row in sorted(rows.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        base, warm = rows.get(("sft-more", seed)), rows.get(("warmup", seed))
        if arm not in ("ppo", "grpo") or base is None:
            continue
        try:
            test = mcnemar_exact(row["right"], base["right"])
        except ValueError as exc:
            raise SystemExit(f"seed {seed}, {arm} against sft-more: {exc}") from exc
        out.append({"seed": seed, "arm": arm, "against": "sft-more", "accuracy": row["accuracy"],
                    "against_accuracy": base["accuracy"], **test,
                    "beats": row["accuracy"] > base["accuracy"] and test["p"] < 0.05,
                    "warmup_floor": warm is not None and warm["accuracy"] < 0.05})  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--train", type=int, default=128, help="training questions (warm-up and RL)")
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--warmup-epochs", type=float, default=2)
    parser.add_argument("--rl-epochs", type=float, default=1, help="passes over the questions by every arm after it")
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--arms", default="sft-more,ppo,grpo")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    files = write_data(args.out / "data", args.train, args.test)
    sft_common = dict(template="chat", lora_r=16, lr=2e-4, batch_size=8, device=args.device, save_steps=50)
    rl_common = dict(template="chat", verifier="number-stated", lora_r=16, lr=1e-5, max_new_tokens=args.max_new_tokens,
                     epochs=args.rl_epochs, device=args.device, save_steps=4)  # fmt: skip
    results = args.out / "results.jsonl"
    done = finished(results, "arm", "seed")
    for seed in map(int, args.seeds.split(",")):
        root = args.out / f"seed-{seed}"
        warm = root / "warmup"
        once(root / "warmup.done", grape.sft, files["warmup"], warm, model=args.model, epochs=args.warmup_epochs,
             seed=seed, **sft_common)  # fmt: skip
        arms = {
            "warmup": None,
            "sft-more": (grape.sft, files["warmup"], dict(model=str(warm), epochs=args.rl_epochs, seed=seed,
                                                          **sft_common)),
            "ppo": (rl, files["questions"], dict(model=str(warm), algo="ppo", kl_coef=0.05, batch_size=8, seed=seed,
                                                 **rl_common)),
            "grpo": (rl, files["questions"], dict(model=str(warm), algo="grpo", num_generations=4, batch_size=4,
                                                  kl_coef=0.05, seed=seed, **rl_common)),
        }  # fmt: skip
        for arm in ["warmup", *args.arms.split(",")]:
            if (arm, seed) in done:
                continue
            model = warm if arm == "warmup" else root / arm
            if arms[arm] is not None:
                work, data, settings = arms[arm]
                once(root / f"{arm}.done", work, data, model, **settings)
            row = {"arm": arm, "seed": seed, **evaluate(args, model, model if arm != "warmup" else root, files["test"])}
            history = model / "rl-history.jsonl"
            if history.is_file():
                row["reward_curve"] = [(h["step"], h["reward"], h.get("right"), h.get("answered"))
                                       for h in map(json.loads, history.read_text().splitlines())]  # fmt: skip
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"seed {seed} {arm}: accuracy {row['accuracy']:.3f} ({row['correct']}/{row['items']}), "
                  f"states an answer {row['stated_rate']:.3f}", flush=True)  # fmt: skip
    if results.exists():
        comparisons = compare(results)
        (args.out / "comparisons.json").write_text(json.dumps(comparisons, indent=1) + "\n")
        for c in comparisons:
            print(f"seed {c['seed']} {c['arm']} vs sft-more: {c['accuracy']:.3f} vs {c['against_accuracy']:.3f}, "
                  f"only {c['arm']} right {c['only_first']}, only sft-more right {c['only_second']}, "
                  f"McNemar p {c['p']:.4f}{' (warm-up at the floor)' if c['warmup_floor'] else ''}")  # fmt: skip


if __name__ == "__main__":
    main()
