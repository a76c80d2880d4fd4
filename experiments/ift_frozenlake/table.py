"""runs.jsonl -> results/table.md: success rate per arm and seed with Wilson intervals, the pre-registered paired
comparison (experiments/ift_frozenlake/README.md), and how the failures ended.

    .venv/bin/python experiments/ift_frozenlake/table.py /work/ift-lake [--out experiments/ift_frozenlake/results]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from grape.evaluation.metrics import mean_t_interval, wilson_interval

HERE = Path(__file__).parent
ARMS = ("sft", "ift", "ift-no-residual", "ift-frozen-input")
COMPARISONS = [  # (name, arm, minus arm, pre-registered criterion)
    ("IFT beats SFT (criterion)", "ift", "sft", True),
    ("the residual's share", "ift", "ift-no-residual", False),
    ("the γ-weighting's share (exploratory)", "ift-no-residual", "ift-frozen-input", False),
    ("the frozen input table against SFT (exploratory)", "ift-frozen-input", "sft", False),
]


def by_arm(runs: list[dict]) -> dict[str, dict[int, dict]]:
    out: dict[str, dict[int, dict]] = {arm: {} for arm in ARMS}
    for run in runs:
        out[run["arm"]][run["seed"]] = run
    return out


def percent(x: float) -> str:
    return f"{100 * x:.1f}"


def arm_table(runs: dict[str, dict[int, dict]]) -> list[str]:
    seeds = sorted({seed for arm in runs.values() for seed in arm})
    lines = ["| arm | " + " | ".join(f"seed {s}" for s in seeds) + " | pooled (95% Wilson) | mean over seeds (95% t) |",
             "|---|" + "---|" * (len(seeds) + 2)]  # fmt: skip
    for arm, done in runs.items():
        if not done:
            continue
        cells = []
        for seed in seeds:
            run = done.get(seed)
            low, high = wilson_interval(run["successes"], run["maps"]) if run else (0, 0)
            cells.append(f"{percent(run['success_rate'])} [{percent(low)}, {percent(high)}]" if run else "–")
        wins, maps = sum(r["successes"] for r in done.values()), sum(r["maps"] for r in done.values())
        low, high = wilson_interval(wins, maps)
        mean, half = mean_t_interval([100 * r["success_rate"] for r in done.values()])
        pooled = f"{percent(wins / maps)} [{percent(low)}, {percent(high)}] ({wins}/{maps})"
        lines.append(f"| {arm} | " + " | ".join(cells) + f" | {pooled} | {mean:.1f} ± {half:.1f} |")
    return lines


def comparisons(runs: dict[str, dict[int, dict]]) -> list[str]:
    lines = ["| comparison | seeds | differences per seed (points) | higher in | mean ± 95% t | verdict |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, arm, other, criterion in COMPARISONS:
        seeds = sorted(set(runs[arm]) & set(runs[other]))
        if not seeds:
            continue
        diffs = [100 * (runs[arm][s]["success_rate"] - runs[other][s]["success_rate"]) for s in seeds]
        mean, half = mean_t_interval(diffs)
        higher = sum(d > 0 for d in diffs)
        if not criterion:
            verdict = "descriptive"
        elif len(seeds) < 5:
            verdict = f"incomplete ({len(seeds)} of 5 seeds)"
        else:
            verdict = "pass" if higher >= 4 and mean - half > 0 else "not reproduced"
        per_seed = ", ".join(f"{d:+.1f}" for d in diffs)
        lines.append(f"| {name}: {arm} − {other} | {len(seeds)} | {per_seed} | {higher}/{len(seeds)} | "
                     f"{mean:+.1f} ± {half:.1f} | {verdict} |")  # fmt: skip
    return lines


def ends_table(runs: dict[str, dict[int, dict]]) -> list[str]:
    lines = ["| arm | goal | hole | moves ran out | not a move | mean moves of a win |", "|---|---|---|---|---|---|"]
    for arm, done in runs.items():
        if not done:
            continue
        ends = {k: sum(r["ends"][k] for r in done.values()) for k in ("goal", "hole", "stopped", "invalid")}
        steps = [r["mean_success_steps"] * r["successes"] for r in done.values() if r["successes"]]
        mean_steps = sum(steps) / max(1, ends["goal"])
        lines.append(f"| {arm} | {ends['goal']} | {ends['hole']} | {ends['stopped']} | {ends['invalid']} | "
                     f"{mean_steps:.2f} |")  # fmt: skip
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the run's --out folder (runs.jsonl, settings.json)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    runs = by_arm([json.loads(line) for line in (args.run_dir / "runs.jsonl").read_text().splitlines()])
    settings = json.loads((args.run_dir / "settings.json").read_text())
    title = (f"Success rate (%) on {settings['eval_maps']} held-out {settings['size']}×{settings['size']} maps per "
             "seed, greedy answers played in FrozenLake-v1:")  # fmt: skip
    paired = "Paired differences (arm − other arm, same seed), in points:"
    ends = "How the answers ended, all seeds together:"
    parts = [title, "", *arm_table(runs), "", paired, "", *comparisons(runs), "", ends, "", *ends_table(runs), ""]
    text = "\n".join(parts)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "table.md").write_text(text)
    for name in ("runs.jsonl", "settings.json", "runs-before-the-fix.jsonl"):
        if (args.run_dir / name).is_file():
            shutil.copyfile(args.run_dir / name, args.out / name)
    print(text)


if __name__ == "__main__":
    main()
