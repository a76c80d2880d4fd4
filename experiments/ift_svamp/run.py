"""IFT against SFT on SVAMP (issue 16): the same chains of thought, steps, seeds and LoRA, the loss the only
difference. Design and pass criterion: experiments/ift_svamp/README.md. A finished stage is skipped on a re-run.

  .venv/bin/python experiments/ift_svamp/run.py --out /work/ift-svamp
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grape

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reft"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/stages.py
from run import evaluate, write_data  # noqa: E402  (the same SVAMP split and evaluation as the ReFT runs)
from stages import finished, once  # noqa: E402

from grape.evaluation.metrics import mcnemar_exact  # noqa: E402

ARMS = {"sft": {"loss": "nll"}, "ift": {"loss": "ift"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--train", type=int, default=256)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--epochs", type=float, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=160)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    files = write_data(args.out / "data", args.train, args.test)
    results = args.out / "results.jsonl"
    done = finished(results, "arm", "seed")
    for seed in map(int, args.seeds.split(",")):
        for arm, objective in ARMS.items():
            if (arm, seed) in done:
                continue
            folder = args.out / f"seed-{seed}" / arm
            once(folder.parent / f"{arm}.done", grape.sft, files["warmup"], folder, model=args.model, template="chat",
                 lora_r=16, lr=2e-4, batch_size=8, epochs=args.epochs, seed=seed, device=args.device, save_steps=50,
                 **objective)  # fmt: skip
            row = {"arm": arm, "seed": seed, **evaluate(args, folder, folder, files["test"])}
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"seed {seed} {arm}: accuracy {row['accuracy']:.3f}, states an answer {row['stated_rate']:.3f}")
    result = verdict(results)
    (args.out / "comparison.json").write_text(json.dumps(result, indent=1) + "\n")
    print(f"IFT against SFT over seeds {result['seeds']}: {result['accuracy']}, pooled McNemar "
          f"{result['pooled_mcnemar']}, passes: {result['passes']}")  # fmt: skip


def verdict(results: Path) -> dict:
    """The pre-registered criterion (README): IFT's accuracy above SFT's in every seed, and the exact McNemar test
    over all seeds' items pooled (IFT against SFT of the same seed) at p < 0.05; at the floor below 5% for both."""
    rows = {(r["arm"], r["seed"]): r for r in map(json.loads, results.read_text().splitlines())}
    seeds = sorted(seed for arm, seed in rows if arm == "ift" and ("sft", seed) in rows)
    ift, sft = ({f"{seed}/{i}": right for seed in seeds for i, right in rows[(arm, seed)]["right"].items()}
                for arm in ("ift", "sft"))  # fmt: skip
    test = mcnemar_exact(ift, sft) if seeds else None
    per_seed = {seed: {arm: rows[(arm, seed)]["accuracy"] for arm in ("ift", "sft")} for seed in seeds}
    return {"seeds": seeds, "accuracy": per_seed, "pooled_mcnemar": test,
            "higher_every_seed": bool(seeds) and all(a["ift"] > a["sft"] for a in per_seed.values()),
            "passes": bool(seeds) and all(a["ift"] > a["sft"] for a in per_seed.values()) and test["p"] < 0.05,
            "floor": bool(seeds) and all(max(a.values()) < 0.05 for a in per_seed.values())}  # fmt: skip


if __name__ == "__main__":
    main()
