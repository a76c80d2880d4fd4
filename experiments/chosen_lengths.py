"""What each arm of grape_vs_baselines.py trained on: response length and base-model fit, and how fit
relates to length across the candidates (reads the scores the experiment wrote; no model is run).

    .venv/bin/python experiments/chosen_lengths.py [experiments/results/cpu]
"""

from __future__ import annotations

import json
import random
import statistics
import sys
from pathlib import Path

import numpy as np
from transformers import AutoTokenizer

from grape.data.tables import read_table_rows
from grape.models.load import resolve_model_dir

sys.path.insert(0, str(Path(__file__).parent))
import grape_vs_baselines as experiment  # noqa: E402


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).parent / "results" / "cpu")
    settings = json.loads((folder / "settings.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("gemma-3-270m")[0])
    _, pool = experiment.split(experiment.load_pool(experiment.POOL), settings["heldout"])
    train = {seed: random.Random(seed).sample(pool, settings["n_train"]) for seed in range(settings["seeds"])}
    scores: dict[str, list[dict]] = {}
    for row in read_table_rows(folder / "scores.parquet"):
        scores.setdefault(row["id"], []).append(row)
    print("| arm | mean response tokens (EOS included) | mean base-model fit |\n|---|---|---|")
    for arm in experiment.ARMS:
        picks = [experiment.choose(arm, p, scores, seed) for seed, problems in train.items() for p in problems]
        tokens = [len(tokenizer(text, add_special_tokens=False)["input_ids"]) + 1 for text, _, _ in picks]
        fits = [fit for _, _, fit in picks if fit is not None]
        fit = f"{statistics.mean(fits):.3f}" if fits else "–"
        print(f"| {arm} | {statistics.mean(tokens):.1f} | {fit} |")
    pairs = np.array([(r["mean_logprob"], r["n_tokens"]) for rows in scores.values() for r in rows])
    r = np.corrcoef(pairs[:, 0], pairs[:, 1])[0, 1]
    print(f"\nPearson r(fit, tokens) over {len(pairs)} candidates: {r:.2f}")


if __name__ == "__main__":
    main()
