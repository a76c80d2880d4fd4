"""ITTA against its baselines on rotated digits (design and pass criteria: experiments/itta/README.md).

    nice -n 5 .venv/bin/python experiments/itta/run.py             # all seeds, domains and methods
    nice -n 5 .venv/bin/python experiments/itta/run.py --until 20:50  # stop starting new runs at 20:50 UTC
    .venv/bin/python experiments/itta/table.py                       # results/table.md from results/runs.jsonl

One JSONL line per (method, held-out domain, seed) in results/runs.jsonl; a re-run skips the lines already
there, so an interrupted run resumes. A re-run with other settings into the same folder is refused.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
from pathlib import Path

import torch

from grape.tta.data import DIGIT_ANGLES
from grape.tta.run import tta
from grape.tta.settings import TTASettings

HERE = Path(__file__).parent
METHODS = ("erm", "mixstyle", "ttt", "itta")  # itta's line also carries the no-test-time-step arm
SEEDS = (0, 1, 2, 3, 4)
SETTINGS = TTASettings(data="digits", steps=200, batch_per_domain=16, eval_every=50)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--until", help="HH:MM (UTC): start no run after this time")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    settings_file, runs_file = args.out / "settings.json", args.out / "runs.jsonl"
    shared = dataclasses.asdict(SETTINGS)
    if settings_file.is_file() and json.loads(settings_file.read_text()) != shared:
        raise SystemExit(f"{settings_file}: these results were made with other settings; use another --out")
    settings_file.write_text(json.dumps(shared, indent=2) + "\n")
    done = {(r["method"], r["heldout"], r["seed"]) for r in map(json.loads, runs_file.open())} \
        if runs_file.is_file() else set()  # fmt: skip
    deadline = _deadline(args.until)
    for seed in SEEDS:
        for heldout in map(str, DIGIT_ANGLES):
            for method in METHODS:
                if (method, heldout, seed) in done:
                    continue
                if deadline and datetime.datetime.now(datetime.timezone.utc) >= deadline:
                    print(f"stopping at {args.until} UTC; {len(done)} runs in {runs_file}")
                    return
                settings = dataclasses.replace(SETTINGS, method=method, heldout=heldout, seed=seed)
                metrics = tta(None, settings)
                with runs_file.open("a") as handle:
                    handle.write(json.dumps(metrics) + "\n")
                done.add((method, heldout, seed))
                print(f"{method:8} {heldout:>2}° seed {seed}: {metrics['accuracy']} ({metrics['seconds']} s)",
                      flush=True)  # fmt: skip


def _deadline(until: str | None) -> datetime.datetime | None:
    if not until:
        return None
    hour, minute = map(int, until.split(":"))
    now = datetime.datetime.now(datetime.timezone.utc)
    return now.replace(hour=hour, minute=minute, second=0, microsecond=0)


if __name__ == "__main__":
    main()
