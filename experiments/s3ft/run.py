"""S3FT against gold SFT, self-else-gold and GRAPE on SVAMP (issue 15), with forgetting measured on AlpacaEval.
The design and the pass criterion: experiments/s3ft/README.md. Every stage's output is kept under --out and a
finished stage is skipped on a re-run (grape's own stages also resume inside: generation extends its output,
scoring its parts, training its checkpoints), so the run is resumable at any point.

  .venv/bin/python experiments/s3ft/run.py --out /work/s3ft
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import grape

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/stages.py
from data import write_data  # noqa: E402
from stages import finished, once  # noqa: E402

HERE = Path(__file__).resolve().parent
# arm -> selection strategy over the verified, scored candidates (all with require_correct)
ARMS = {
    "gold": "source:reference",
    "self-else-gold": "priority:self,reference",
    "s3ft": "priority:self,paraphrase,reference",
    "grape": "grape",
}


def mean_fit(rows: list[dict]) -> float:
    scored = [r["mean_logprob"] for r in rows if r.get("status") == "scored"]
    return statistics.fmean(scored)


def own_answer(row: dict) -> str:
    """The base model's answer in a generated row (not the input's completion, which generation keeps too)."""
    (text,) = [c["text"] for c in row["candidates"] if c.get("source") == "own"]
    return text


def measure(args, model: str, folder: Path, files: dict[str, Path]) -> dict:
    """A model's metrics: test accuracy, and the mean log-prob per token of the held-out gold solutions, of the
    strong generator's AlpacaEval answers and of the base model's own AlpacaEval answers."""
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    common = {"model": model, "template": "chat", "device": args.device}
    # static batches, as the base model was measured before continuous batching existed
    _, summary = grape.evaluate(files["test"], folder / "test.eval.jsonl", verifier="number",
                                max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                                batching="static", **common)  # fmt: skip
    metrics = {"accuracy": summary["accuracy"], "correct": summary["correct"], "judged": summary["judged"],
               "ci95": summary["ci95"], "mean_response_tokens": summary["mean_response_tokens"]}  # fmt: skip
    for name in ("heldout", "alpaca", "own"):
        rows = grape.score(files[name], folder / f"{name}.parquet", **common)
        metrics[f"{name}_logprob"] = mean_fit(rows)
    done.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--arms", default=",".join(ARMS))
    parser.add_argument("--pool", type=int, default=128)
    parser.add_argument("--heldout", type=int, default=100)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--alpaca", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    out = args.out
    files = write_data(out / "data", args.pool, args.heldout, args.test, args.alpaca)
    files["own"] = out / "data" / "own.jsonl"
    sampling = {"n": 1, "temperature": 0.0, "max_new_tokens": args.max_new_tokens, "seed": 0}
    static = {"batching": "static"}  # as the recorded candidates were made, before generate had continuous batching
    # the base model's own greedy answers to the AlpacaEval instructions: its "pre-training answers"
    own = out / "own-answers.jsonl"
    once(out / "own.done", grape.generate, files["alpaca"], own, sampling=sampling, batch_size=args.batch_size,
         models=[{"name": "own", "model": args.model, "template": "chat"}], device=args.device, **static)  # fmt: skip
    if not files["own"].exists():
        rows = [json.loads(line) for line in own.read_text().splitlines()]
        # the input's own completion (gpt4's answer) is carried along as a candidate: take the model's
        own_rows = [{"id": r["id"], "prompt": r["prompt"], "completion": own_answer(r)} for r in rows]
        files["own"].write_text("".join(json.dumps(row) + "\n" for row in own_rows))
    # one generation gathers the three sources: self (greedy, chat), paraphrase (greedy), reference (gold)
    candidates, verified, scores = out / "candidates.jsonl", out / "verified.jsonl", out / "scores.parquet"
    generators = [{"name": "self", "model": args.model, "template": "chat"},
                  {"name": "paraphrase", "model": args.model, "template": str(HERE / "paraphrase.jinja")}]  # fmt: skip
    once(out / "generate.done", grape.generate, files["pool"], candidates, models=generators, sampling=sampling,
         reference_field="solution", batch_size=args.batch_size, device=args.device, **static)  # fmt: skip
    once(out / "verify.done", grape.verify, candidates, verified, verifier="number")
    once(out / "score.done", grape.score, verified, scores, model=args.model, template="chat", device=args.device)
    results = out / "results.jsonl"
    done = finished(results, "arm", "seed")
    base = measure(args, args.model, out / "base", files)
    (out / "base.json").write_text(json.dumps(base, indent=1) + "\n")
    arms = args.arms.split(",")
    for arm in arms:
        selected = out / arm / "selected.jsonl"
        selected.parent.mkdir(parents=True, exist_ok=True)
        once(out / arm / "select.done", grape.select, scores, selected, strategy=ARMS[arm], require_correct=True)
    # seed-major, so that a partial run holds whole seeds: every arm of a seed before the next seed
    for seed in map(int, args.seeds.split(",")):
        for arm in arms:
            if (arm, seed) not in done:
                selected = out / arm / "selected.jsonl"
                summary = json.loads((out / arm / "selected.jsonl.meta.json").read_text()).get("summary", {})
                train_and_measure(args, arm, seed, selected, summary, base, files)


def train_and_measure(args, arm: str, seed: int, selected: Path, summary: dict, base: dict, files: dict) -> None:
    folder = args.out / arm / f"seed-{seed}"
    once(folder / "sft.done", grape.sft, selected, folder / "model", lora_r=args.lora_r, lr=args.lr,
         epochs=args.epochs, batch_size=8, seed=seed, device=args.device, save_steps=50)  # fmt: skip
    metrics = measure(args, str(folder / "model"), folder, files)
    deltas = {
        f"delta_{k}": metrics[k] - base[k] for k in ("accuracy", "heldout_logprob", "alpaca_logprob", "own_logprob")
    }
    row = {"arm": arm, "seed": seed, "selection": summary, **metrics, **deltas}
    with (args.out / "results.jsonl").open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(f"{arm} seed {seed}: accuracy {metrics['accuracy']:.3f}, Δ log-prob alpaca "
          f"{deltas['delta_alpaca_logprob']:+.4f}, own {deltas['delta_own_logprob']:+.4f}, "
          f"held-out gold {deltas['delta_heldout_logprob']:+.4f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
