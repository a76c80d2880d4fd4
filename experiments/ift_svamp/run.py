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


if __name__ == "__main__":
    main()
