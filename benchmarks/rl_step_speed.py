"""PPO and GRPO step speed: tokens/s of rollout (sampling) and of update (reference + old pass, then epochs).

  .venv/bin/python benchmarks/rl_step_speed.py --model smollm2-135m-instruct --rounds 3 --lora-r 0 16
  .venv/bin/python benchmarks/rl_step_speed.py --algo grpo --rounds 3 --lora-r 16 --batch-size 4 --num-generations 4

GRPO runs `grape rl --algo grpo` itself (TRL's GRPOTrainer) for --rounds rollout batches of --batch-size questions
× --num-generations answers, and reads each batch's timing from its history (sampling seconds; the rest of
the batch: rewards, old and reference passes, 2 optimizer epochs).

Each round takes 8 SVAMP questions (../shared/data/svamp/train_nl.jsonl, the paper template), samples one answer
each (temperature 1, up to --max-new-tokens), scores them with the `number` verifier and runs one PPO update
(2 epochs, the whole batch per optimizer step). Rollout tokens/s = answer tokens sampled / sampling seconds;
update tokens/s = the same answer tokens / update seconds (the no-grad policy and reference passes plus 2
forward-backward passes). Prints the median and spread of the rounds and the load average before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

from grape.models.load import load_model
from grape.rl.policy import build_policy
from grape.rl.ppo import batch_rows
from grape.rl.ppo_step import ppo_update
from grape.rl.prompts import read_questions, stop_ids
from grape.rl.reward import reward_function
from grape.rl.rollout import sample_rollouts
from grape.rl.settings import RLSettings, resolved
from grape.text import Renderer

SVAMP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "svamp" / "train_nl.jsonl"


def measure(model_name: str, lora_r: int, rounds: int, batch_size: int, max_new_tokens: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    loaded = load_model(model_name, dtype="float32", device="cpu")
    renderer = Renderer(loaded.tokenizer, "paper")
    questions = read_questions(SVAMP, renderer, "question", "answer_value", 512)
    settings = resolved(RLSettings(lora_r=lora_r, batch_size=batch_size, max_new_tokens=max_new_tokens))
    policy = build_policy(loaded.model, lora_r, settings.lora_alpha)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=settings.lr)
    reward, stops = reward_function("number"), stop_ids(renderer, loaded.tokenizer)
    sampler = torch.Generator().manual_seed(0)
    rows = []
    for step in range(rounds):
        batch = [questions[i] for i in batch_rows(len(questions), batch_size, step, 0)]
        start = time.perf_counter()
        rollouts = sample_rollouts(policy.model, [q.prompt_ids for q in batch], max_new_tokens=max_new_tokens,
                                   stop_ids=stops, pad_id=loaded.tokenizer.pad_token_id, generator=sampler)  # fmt: skip
        sampled = time.perf_counter() - start
        lengths = rollouts.response_mask.sum(1).long().tolist()
        texts = [loaded.tokenizer.decode(r[:n]) for r, n in zip(rollouts.response_ids, lengths, strict=True)]
        scores = torch.tensor([reward(t, q.item).value for t, q in zip(texts, batch, strict=True)])
        start = time.perf_counter()
        ppo_update(policy, optimizer, rollouts, scores, settings)
        updated = time.perf_counter() - start
        tokens = int(rollouts.response_mask.sum())
        rows.append({"answer_tokens": tokens, "prompt_tokens": int(rollouts.prompt_mask.sum()),
                     "rollout_tok_s": tokens / sampled, "update_tok_s": tokens / updated,
                     "rollout_s": sampled, "update_s": updated, "load_average": os.getloadavg()})  # fmt: skip
        print(json.dumps({"lora_r": lora_r, "round": step, **rows[-1]}), file=sys.stderr, flush=True)
    summary = {"model": model_name, "lora_r": lora_r, "batch_size": batch_size, "max_new_tokens": max_new_tokens,
               "threads": threads, "rounds": rows}  # fmt: skip
    for key in ("rollout_tok_s", "update_tok_s"):
        values = [r[key] for r in rows]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


def measure_grpo(model_name: str, lora_r: int, rounds: int, batch_size: int, generations: int, max_new_tokens: int,
                 threads: int) -> dict:  # fmt: skip
    """GRPO rollout and update tokens/s over ``rounds`` rollout batches of a real `grape rl --algo grpo` run."""
    import tempfile

    from grape.rl.run import rl

    torch.set_num_threads(threads)
    rows = [json.loads(line) for line in SVAMP.read_text().splitlines()[: batch_size * rounds]]
    with tempfile.TemporaryDirectory(prefix="grape-grpo-bench-") as scratch:
        data = Path(scratch) / "questions.jsonl"
        data.write_text("".join(json.dumps({"prompt": r["question"], "answer": r["answer_value"]}) + "\n"
                                for r in rows))  # fmt: skip
        result = rl(data, Path(scratch) / "run", model=model_name, algo="grpo", template="paper",
                    verifier="number", lora_r=lora_r, batch_size=batch_size, num_generations=generations,
                    max_new_tokens=max_new_tokens, max_steps=rounds, save_steps=10**6, dtype="float32",
                    device="cpu")  # fmt: skip
    out = []
    for h in result.history:
        tokens = h["completions/mean_length"] * batch_size * generations
        out.append({"answer_tokens": tokens, "rollout_tok_s": tokens / h["rollout_seconds"],
                    "update_tok_s": tokens / h["update_seconds"], "rollout_s": h["rollout_seconds"],
                    "update_s": h["update_seconds"]})  # fmt: skip
        print(json.dumps({"algo": "grpo", "lora_r": lora_r, "round": h["step"], **out[-1]}), file=sys.stderr)
    summary = {"model": model_name, "algo": "grpo", "lora_r": lora_r, "batch_size": batch_size,
               "num_generations": generations, "max_new_tokens": max_new_tokens, "threads": threads,
               "rounds": out}  # fmt: skip
    for key in ("rollout_tok_s", "update_tok_s"):
        values = [r[key] for r in out]
        summary[key] = {"median": statistics.median(values), "min": min(values), "max": max(values)}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--lora-r", type=int, nargs="+", default=[0, 16])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--algo", choices=("ppo", "grpo"), default="ppo")
    parser.add_argument("--num-generations", type=int, default=4, help="GRPO: answers per question")
    args = parser.parse_args()
    load_before = os.getloadavg()
    if args.algo == "grpo":
        results = [measure_grpo(args.model, r, args.rounds, args.batch_size, args.num_generations,
                                args.max_new_tokens, args.threads) for r in args.lora_r]  # fmt: skip
    else:
        results = [measure(args.model, r, args.rounds, args.batch_size, args.max_new_tokens, args.threads)
                   for r in args.lora_r]  # fmt: skip
    print(json.dumps({"load_average_before": load_before, "load_average_after": os.getloadavg(),
                      "cpus": os.cpu_count(), "torch": torch.__version__, "results": results}, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
