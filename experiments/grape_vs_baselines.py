"""GRAPE against its baselines, the paper's Table 1 design at small scale (GSM8K, real model solutions).

Pool: ../shared/data/gsm8k/example_model_solutions.jsonl: per GSM8K test problem the ground-truth
solution and four model solutions (GPT-3 6B/175B, fine-tuned / verifier-ranked) with human correctness
labels. Training problems are those where the strongest source is correct and at least two sources
are, so that every arm has a response for every problem and a choice exists. Each seed draws its own
training problems; within a seed every arm trains on the same problems, one response each, with the
same steps (a paired design). Held-out problems are disjoint from every training problem.

Arms: grape (the correct solution the target fits best: highest mean log-prob per token), lowest (the
paper's ablation), random (a random correct solution), ground_truth, strongest (175b_verification only).
Measures on held-out problems: mean log-prob per token of the ground-truth solution (the scorer, fp32)
and accuracy of greedy answers (math verifier), with a 95% Wilson interval per run.

CPU (about 45 minutes on an idle 2-core machine: two worker processes of one thread each):
    .venv/bin/python experiments/grape_vs_baselines.py --preset cpu --workers 2
GPU:
    .venv/bin/python experiments/grape_vs_baselines.py --preset gpu --threads 0
Results go to experiments/results/<preset>/ (runs.jsonl, one line per arm and seed; table.md). A re-run
skips the (arm, seed) pairs already in runs.jsonl, so an interrupted run resumes; a re-run with other
settings into the same folder is refused (its runs would not be comparable).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import torch

from grape.data.tables import write_rows
from grape.evaluation.evaluate import evaluate
from grape.models.load import LoadedModel, load_model
from grape.scoring.score import score
from grape.selection.strategies import rank_by_fit, rank_by_lowest_fit, rank_random
from grape.training.sft import sft

POOL = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "example_model_solutions.jsonl"
SOURCES = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
STRONGEST = "175b_verification"  # the most often correct source in the pool (742 of 1319)
ARMS = ("grape", "lowest", "random", "ground_truth", "strongest")
PRESETS = {
    # n_train problems per seed; steps = n_train / batch per epoch; heldout for log-lik; acc_items for accuracy.
    "cpu": dict(n_train=48, batch_size=4, epochs=1, heldout=96, acc_items=32, max_new_tokens=160, seeds=3),
    "gpu": dict(n_train=400, batch_size=16, epochs=2, heldout=400, acc_items=400, max_new_tokens=256, seeds=5),
}


def load_pool(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    for i, row in enumerate(rows):
        row["id"] = f"gsm8k-test-{i}"
        row["correct"] = {s: row[s]["solution"] for s in SOURCES if row[s]["is_correct"]}
    return rows


def split(rows: list[dict], heldout: int, split_seed: int = 1234) -> tuple[list[dict], list[dict]]:
    """(held-out problems, training pool); the training pool keeps problems that give every arm a response."""
    order = list(range(len(rows)))
    random.Random(split_seed).shuffle(order)
    held = [rows[i] for i in order[:heldout]]
    pool = [rows[i] for i in order[heldout:] if STRONGEST in rows[i]["correct"] and len(rows[i]["correct"]) >= 2]
    return held, pool


def choose(arm: str, problem: dict, scores: dict[str, list[dict]], seed: int) -> tuple[str, str, float | None]:
    """(response text, its source, its base-model fit) for one arm on one problem."""
    if arm == "ground_truth":
        return problem["ground_truth"], "ground_truth", None
    rows = scores[problem["id"]]
    if arm == "strongest":
        row = next(r for r in rows if r["source"] == STRONGEST)
    else:
        rank = {"grape": rank_by_fit, "lowest": rank_by_lowest_fit, "random": rank_random}[arm]
        row = rank(rows, seed)[0]
    return row["response"], row["source"], row["mean_logprob"]


def score_candidates(problems: list[dict], loaded: LoadedModel, out: Path) -> dict[str, list[dict]]:
    """Every correct model solution of the training problems, scored once by the untrained target."""
    path = out / "candidates.jsonl"
    grouped = [{"id": p["id"], "prompt": p["question"], "candidates": candidates(p)} for p in problems]
    write_rows(grouped, path)
    by_id: dict[str, list[dict]] = {}
    for row in score(path, out / "scores.parquet", loaded=loaded):
        by_id.setdefault(row["id"], []).append(row)
    return by_id


def candidates(problem: dict) -> list[dict]:
    return [{"text": text, "source": source} for source, text in problem["correct"].items()]


def heldout_loglik(loaded: LoadedModel, path: Path) -> float:
    """Mean over held-out problems of the ground truth's mean log-prob per token."""
    rows = score(path, None, loaded=loaded)
    return statistics.mean(r["mean_logprob"] for r in rows)


def measure(loaded: LoadedModel, files: dict[str, Path], settings: dict) -> dict:
    """Held-out log-lik of the ground truth, and greedy accuracy (answers written to files["eval_out"])."""
    started = time.time()
    loglik = heldout_loglik(loaded, files["loglik"])
    limit = settings["max_new_tokens"]
    _, summary = evaluate(files["accuracy"], files["eval_out"], loaded=loaded, max_new_tokens=limit,
                          batch_size=settings["acc_items"])  # fmt: skip
    return {"heldout_loglik": loglik, "correct": summary["correct"], "judged": summary["judged"],
            "accuracy": summary["accuracy"], "eval_seconds": round(time.time() - started, 1)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", choices=PRESETS, default="cpu")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--lr", type=float, default=5e-4, help="LoRA learning rate (linear decay, no warm-up)")
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument(
        "--threads", type=int, default=1,
        help="torch threads; 0 = torch's default. On a shared CPU one thread per process avoids OpenMP "
        "oversubscription (greedy decoding ran 6x faster with 1 thread than 2 on a loaded 2-core machine)",
    )  # fmt: skip
    parser.add_argument("--out", default=None, help="results folder. Default: experiments/results/<preset>")
    parser.add_argument("--workers", type=int, default=1, help="(arm, seed) runs in parallel, one process each")
    for key, value in PRESETS["cpu"].items():
        parser.add_argument(f"--{key.replace('_', '-')}", type=int, default=None, help=f"preset cpu: {value}")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    settings = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in PRESETS[args.preset].items()}
    out = Path(args.out or Path(__file__).parent / "results" / args.preset)
    record_settings(out / "settings.json", {**settings, "lr": args.lr, "lora_r": args.lora_r})

    held, pool = split(load_pool(POOL), settings["heldout"])
    train = {seed: random.Random(seed).sample(pool, settings["n_train"]) for seed in range(settings["seeds"])}
    files = {
        "loglik": write_rows([{"id": p["id"], "prompt": p["question"], "candidates": [
            {"text": p["ground_truth"], "source": "ground_truth"}]} for p in held], out / "heldout_loglik.jsonl"),
        "accuracy": write_rows([{"id": p["id"], "prompt": p["question"], "answer": p["ground_truth"]}
                                for p in held[: settings["acc_items"]]], out / "heldout_accuracy.jsonl"),
    }  # fmt: skip
    base = load_model("gemma-3-270m", "float32", "cpu")
    union = {p["id"]: p for problems in train.values() for p in problems}
    scores = score_candidates(list(union.values()), base, out)
    runs_path = out / "runs.jsonl"
    done = {(r["arm"], r["seed"]) for r in _read_runs(runs_path)}
    todo = [("base", -1)] if ("base", -1) not in done else []
    todo += [(arm, seed) for seed in train for arm in args.arms.split(",") if (arm, seed) not in done]
    tasks = [(arm, seed, train.get(seed, []), scores, files, settings, args) for arm, seed in todo]
    if args.workers <= 1:
        _worker_init(args.threads, base)
        for task in tasks:
            _append(runs_path, _run_task(task))
    else:
        del base  # each worker loads its own copy
        spawn = get_context("spawn")  # a fresh interpreter: no OpenMP state inherited from this process
        with ProcessPoolExecutor(args.workers, spawn, _worker_init, (args.threads,)) as workers:
            for record in workers.map(_run_task, tasks):
                _append(runs_path, record)
    write_table(runs_path, out / "table.md")


def record_settings(path: Path, settings: dict) -> None:
    """Write the run's settings; refuse to add runs to a folder whose earlier runs used other settings."""
    if path.exists() and json.loads(path.read_text()) != settings:
        raise SystemExit(f"{path.parent}: holds runs made with other settings ({path.read_text().strip()}); "
                         "choose another --out or remove the folder")  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(settings, indent=2))


_BASE: LoadedModel | None = None  # the untrained target, one per process


def _worker_init(threads: int, base: LoadedModel | None = None) -> None:
    global _BASE
    if threads > 0:
        torch.set_num_threads(threads)
    _BASE = base or load_model("gemma-3-270m", "float32", "cpu")


def _run_task(task: tuple) -> dict:
    arm, seed, problems, scores, files, settings, args = task
    name = "base" if arm == "base" else f"{arm}-seed{seed}"
    files = {**files, "eval_out": Path(files["loglik"]).parent / "answers" / f"{name}.jsonl"}
    if arm == "base":
        return {"arm": "base", "seed": -1, **measure(_BASE, files, settings)}
    return run_arm(arm, seed, problems, scores, _BASE, files, settings, args)


def run_arm(arm, seed, problems, scores, base: LoadedModel, files, settings: dict, args) -> dict:
    """Fine-tune a fresh copy of the base model on one response per problem chosen by ``arm``; measure it."""
    picks = [choose(arm, p, scores, seed) for p in problems]
    rows = [{"prompt": p["question"], "completion": text} for p, (text, _, _) in zip(problems, picks, strict=True)]
    fits = [fit for _, _, fit in picks if fit is not None]
    steps = settings["epochs"] * -(-settings["n_train"] // settings["batch_size"])
    started = time.time()
    loaded = LoadedModel(copy.deepcopy(base.model), base.tokenizer, dict(base.identity))
    result = sft(rows, None, loaded=loaded, max_steps=steps, batch_size=settings["batch_size"], lr=args.lr,
                 lora_r=args.lora_r, seed=seed, precision="fp32", logging_steps=1, device="cpu")  # fmt: skip
    trained = LoadedModel(result.model, base.tokenizer, dict(base.identity))
    return {
        "arm": arm, "seed": seed, "n_train": len(rows), "steps": result.metrics["steps"],
        "loss_first": result.metrics["loss_first"], "loss_last": result.metrics["loss_last"],
        "train_fit": statistics.mean(fits) if fits else None,
        "sources": dict(Counter(source for _, source, _ in picks)),
        "train_seconds": round(time.time() - started, 1), **measure(trained, files, settings),
    }  # fmt: skip


def _read_runs(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def _append(path: Path, record: dict) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(record) + "\n")
    print(json.dumps(record), flush=True)


def write_table(runs_path: Path, target: Path) -> None:
    """Per arm: mean ± std over seeds, and the paired difference to GRAPE (same seed, same problems)."""
    runs = _read_runs(runs_path)
    grape = {r["seed"]: r for r in runs if r["arm"] == "grape"}
    lines = ["| arm | seeds | train fit (base) | held-out GT log-lik / token | Δ log-lik vs grape (paired) "
             "| held-out accuracy | Δ accuracy vs grape | correct / judged |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for arm in ("base", *ARMS):
        mine = [r for r in runs if r["arm"] == arm]
        if not mine:
            continue
        fits = [r["train_fit"] for r in mine if r.get("train_fit") is not None]
        paired = [(r, grape[r["seed"]]) for r in mine if r["seed"] in grape and arm not in ("base", "grape")]
        d_loglik = [r["heldout_loglik"] - g["heldout_loglik"] for r, g in paired]
        d_accuracy = [100 * (r["accuracy"] - g["accuracy"]) for r, g in paired]
        loglik, accuracy = [r["heldout_loglik"] for r in mine], [100 * r["accuracy"] for r in mine]
        lines.append(f"| {arm} | {len(mine) if arm != 'base' else '–'} | {_mean_std(fits, 3)} | "
                     f"{_mean_std(loglik, 4)} | {_mean_std(d_loglik, 4, signed=True)} | "
                     f"{_mean_std(accuracy, 1)}% | {_mean_std(d_accuracy, 1, signed=True)} | "
                     f"{sum(r['correct'] for r in mine)} / {sum(r['judged'] for r in mine)} |")  # fmt: skip
    target.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _mean_std(values: list[float], digits: int, signed: bool = False) -> str:
    if not values:
        return "–"
    sign = "+" if signed else ""
    if len(values) == 1:
        return f"{values[0]:{sign}.{digits}f}"
    return f"{statistics.mean(values):{sign}.{digits}f} ± {statistics.stdev(values):.{digits}f}"


if __name__ == "__main__":
    main()
