"""DPO's reference pass: grape's (a scoring job on grape's engine) against TRL's own precompute pass, on the same
pairs, in one process, repeated and interleaved.

    .venv/bin/python benchmarks/dpo_reference_pass.py                      # gemma-3-270m, 32 GSM8K pairs, fp32
    .venv/bin/python benchmarks/dpo_reference_pass.py --pairs 64 --rounds 5 --json reference.json
    python benchmarks/dpo_reference_pass.py --device cuda --pairs 256      # on a GPU

Pairs: GSM8K test problems with a right and a wrong human-labelled solution (../shared/data/gsm8k/
example_model_solutions.jsonl): chosen = the ground truth, rejected = the first wrong model solution; rendered
with the paper template (whole-text ids, EOS scored), as `grape dpo` trains on them.

grape: `grape.training.reference_pass.reference_logps`, as `grape dpo` runs it: the pairs as grouped candidates
[chosen, rejected], rendered and scored by grape's engine (the prompt once per pair, the LM head on response rows
only, token-budget batches), with the scoring job's bookkeeping and its fingerprint of the model's weights.
TRL: `DPOTrainer._precompute_ref_logps`, TRL 1.16's own pass (padded batches of --trl-batch pairs, i.e. twice as
many sequences, the whole model with TRL's chunked fused LM head), on the same tokenised dataset through the same
collator, plus the hash of the model's weights its trainer takes for that pass (`hash_module`). Neither reuses
anything between rounds (TRL's cache file of an in-memory dataset gets a random name).

Timing: one warm-up of each, then --rounds rounds, each running both in an order that alternates; per method the
median seconds and spread, the speed-up as the median of per-round ratios (printed only when steady: round_stats).
The 1-minute load average is recorded before, at each round and after. Agreement: max |Δ Σ log-prob| and
max |Δ mean log-prob| per response between the two passes (fp32: both must be ≤ 1e-4 per token).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from measure import load_average, machine_state
from round_stats import MAX_SPREAD_PCT, per_round_ratios, ratio_refusal, rotated_order, spread_of
from trl import DPOTrainer
from trl.trainer.utils import hash_module

from grape.models.load import LoadedModel, load_model, resolve_device
from grape.text import Renderer
from grape.training.dpo import _trainer
from grape.training.preference import PreferencePair, read_pairs, tokenise_pairs
from grape.training.preference_trainers import dpo_dataset
from grape.training.reference_pass import reference_logps
from grape.training.settings import DPOSettings

GSM8K = Path(__file__).resolve().parents[2] / "shared" / "data" / "gsm8k" / "example_model_solutions.jsonl"
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def gsm8k_pairs(n: int) -> list[dict]:
    """The first ``n`` problems that have a wrong model solution: (question, ground truth, that solution)."""
    if not GSM8K.is_file():
        raise SystemExit(f"{GSM8K} is absent: the shared public data sits beside the project, not in it")
    pairs = []
    with GSM8K.open() as handle:
        for line in handle:
            row = json.loads(line)
            wrong = next((row[s]["solution"] for s in SOLVERS if not row[s]["is_correct"]), None)
            if wrong is not None:
                pairs.append({"prompt": row["question"], "chosen": row["ground_truth"], "rejected": wrong})
            if len(pairs) == n:
                return pairs
    return pairs


def grape_pass(texts: list, pairs: list[PreferencePair], loaded: LoadedModel) -> tuple[list[float], list[float]]:
    return reference_logps(texts, pairs, loaded, "paper", True, folder=None)


def trl_pass(trainer, pairs: list[PreferencePair]) -> tuple[list[float], list[float]]:
    """TRL's own pass on the pairs' ids (the dataset without reference columns, as TRL would receive it)."""
    hash_module(trainer.model)  # what DPOTrainer.__init__ computes for this pass
    dataset = dpo_dataset(pairs, [0.0] * len(pairs), [0.0] * len(pairs))
    dataset = dataset.remove_columns(["ref_chosen_logps", "ref_rejected_logps"])
    done = DPOTrainer._precompute_ref_logps(trainer, dataset, "benchmark", trainer.args.per_device_train_batch_size)
    return list(done["ref_chosen_logps"]), list(done["ref_rejected_logps"])


def agreement(pairs: list[PreferencePair], a: tuple, b: tuple) -> dict[str, float]:
    """Largest |Δ| of the sums and of the means (per scored token) between two passes."""
    sums, means = [], []
    for k, name in enumerate(("chosen", "rejected")):
        for pair, x, y in zip(pairs, a[k], b[k], strict=True):
            sums.append(abs(x - y))
            means.append(abs(x - y) / len(pair.scored(name)))
    return {"max_abs_diff_sum": max(sums), "max_abs_diff_mean": max(means)}


def main() -> None:
    loads = [load_average()]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gemma-3-270m")
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--trl-batch", type=int, default=8, help="pairs per batch of TRL's pass (DPO's default 8)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--max-spread", type=float, default=MAX_SPREAD_PCT)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    device = resolve_device(args.device)
    loaded = load_model(args.model, "float32", str(device))
    rows = gsm8k_pairs(args.pairs)
    texts = read_pairs(rows, "gsm8k")
    pairs = tokenise_pairs(texts, Renderer(loaded.tokenizer, "paper"), 100_000, "gsm8k")
    tokens = sum(len(p.prompt_ids) * 2 + len(p.chosen_ids) + len(p.rejected_ids) for p in pairs)
    settings = DPOSettings(beta=0.1, lr=1e-6, precision="fp32", max_length=100_000, batch_size=args.trl_batch)
    scratch = tempfile.TemporaryDirectory(prefix="dpo-bench-")
    dataset = dpo_dataset(pairs, [0.0] * len(pairs), [0.0] * len(pairs))
    trainer = _trainer(loaded, dataset, settings, device, None, Path(scratch.name))
    trainer.model.eval()
    print(f"{args.model} on {device}, fp32: {len(pairs)} pairs, {tokens} tokens (prompt counted twice), "
          f"load average {loads[0]:.2f}")  # fmt: skip

    methods = {"grape": lambda: grape_pass(texts, pairs, loaded), "trl": lambda: trl_pass(trainer, pairs)}
    results = {name: run() for name, run in methods.items()}  # warm-up, and the values compared
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for r in range(args.rounds):
        for name in rotated_order(list(methods), r):
            started = time.perf_counter()
            results[name] = methods[name]()
            seconds[name].append(time.perf_counter() - started)
        loads.append(load_average())
        print(f"round {r + 1}: " + ", ".join(f"{n} {seconds[n][-1]:.2f} s" for n in methods)
              + f"  (load {loads[-1]:.2f})")  # fmt: skip
    agree = agreement(pairs, results["grape"], results["trl"])
    spreads = {name: spread_of(values) for name, values in seconds.items()}
    ratio = spread_of(per_round_ratios(seconds["trl"], seconds["grape"]))
    refusal = ratio_refusal([ratio, *spreads.values()], args.max_spread)
    print(f"\n{'method':6s} {'median s':>9s} {'min-max':>15s} {'range':>6s}")
    for name, s in spreads.items():
        print(f"{name:6s} {s.median:9.2f} {s.low:7.2f}-{s.high:<7.2f} {s.range_pct:5.1f}%")
    print(f"\nagreement: max |Δ sum| {agree['max_abs_diff_sum']:.2e}, max |Δ mean| {agree['max_abs_diff_mean']:.2e}")
    if refusal:
        print(f"speed-up grape over TRL: {refusal} (median of per-round ratios {ratio.median:.2f}x)")
    else:
        print(f"speed-up grape over TRL: {ratio.median:.2f}x (rounds {ratio.low:.2f}-{ratio.high:.2f}x)")
    print(f"load average: {', '.join(f'{x:.2f}' for x in loads)}")
    if args.json:
        figures = {"machine": machine_state(device), "model": args.model, "pairs": len(pairs), "tokens": tokens,
                   "trl_batch": args.trl_batch, "seconds": {n: s.as_dict() for n, s in spreads.items()},
                   "speedup": ratio.as_dict(), "speedup_refused": refusal, "agreement": agree,
                   "load": loads}  # fmt: skip
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    scratch.cleanup()


if __name__ == "__main__":
    main()
