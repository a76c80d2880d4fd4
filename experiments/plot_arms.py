"""The figure beside the GSM8K table in docs/experiments.md, drawn by the run report's own code
(grape.report.run_figures, as `grape report RUN_DIR ...` draws it): held-out accuracy per arm, pooled over
the seeds as the table's "correct / judged" column, with its Wilson 95% interval; and the training loss of
each run where the runs recorded their loss curve (``loss_curve`` in runs.jsonl).

    .venv/bin/python experiments/plot_arms.py [experiments/results/cpu] [--out docs]

Writes <out>/gsm8k-<results folder>-accuracy.png (and -loss.png); needs the png extra and a Chromium.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from grape.evaluation import wilson_interval
from grape.report.png import write_pngs
from grape.report.run_figures import Accuracy, LossCurve, accuracy_figure, loss_figure

ARMS = ("base", "grape", "lowest", "random", "ground_truth", "strongest")  # the table's order


def arm_accuracies(runs: list[dict]) -> list[Accuracy]:
    """Per arm, in the table's order: correct and judged summed over its seeds, with Wilson's interval."""
    results = []
    for arm in [a for a in ARMS if any(r["arm"] == a for r in runs)]:
        mine = [r for r in runs if r["arm"] == arm]
        correct, judged = sum(r["correct"] for r in mine), sum(r["judged"] for r in mine)
        seeds = "" if arm == "base" else f" ({len(mine)} seeds)"
        results.append(Accuracy(f"{arm}{seeds}", correct, judged, *wilson_interval(correct, judged)))
    return results


def loss_curves(runs: list[dict]) -> list[LossCurve]:
    return [LossCurve(f"{r['arm']} seed {r['seed']}", [int(s) for s, _ in r["loss_curve"]],
                      [float(v) for _, v in r["loss_curve"]]) for r in runs if r.get("loss_curve")]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", nargs="?", default=str(Path(__file__).parent / "results" / "cpu"))
    parser.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs"))
    args = parser.parse_args()
    folder = Path(args.results)
    runs = [json.loads(line) for line in (folder / "runs.jsonl").read_text().splitlines() if line.strip()]
    accuracies = arm_accuracies(runs)
    title = f"GSM8K held-out accuracy per arm ({runs[0]['judged']} items per run, seeds pooled), 95% Wilson interval"
    figures = {f"gsm8k-{folder.name}-accuracy": accuracy_figure(accuracies, title)}
    curves = loss_curves(runs)
    if curves:
        figures[f"gsm8k-{folder.name}-loss"] = loss_figure(curves, "GSM8K training loss per run")
    for path in write_pngs(figures, args.out):
        print(path)
    for a in accuracies:
        print(f"{a.label}: {a.correct}/{a.judged} = {a.accuracy:.3f} [{a.low:.3f}, {a.high:.3f}]")


if __name__ == "__main__":
    main()
