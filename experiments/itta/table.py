"""results/runs.jsonl -> results/table.md: accuracy per arm with 95% intervals, the pre-registered paired
comparisons (experiments/itta/README.md), and accuracy per held-out domain.

    .venv/bin/python experiments/itta/table.py [--out experiments/itta/results]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
from pathlib import Path

from grape.evaluation.metrics import mean_t_interval

HERE = Path(__file__).parent
# arm -> (method line, accuracy key)
ARMS = {
    "ERM": ("erm", "none"),
    "ERM+MixStyle": ("mixstyle", "none"),
    "TTT-trained, no steps": ("ttt", "none"),
    "naive TTT (reset)": ("ttt", "reset"),
    "naive TTT (carry)": ("ttt", "carry"),
    "ITTA w/o test-time steps": ("itta", "none"),
    "ITTA (reset)": ("itta", "reset"),
    "ITTA (carry)": ("itta", "carry"),
}
COMPARISONS = [  # (criterion, arm, minus arm, the direction that passes)
    ("1. test-time step of ITTA helps", "ITTA (reset)", "ITTA w/o test-time steps", ">"),
    ("2. ITTA beats ERM", "ITTA (reset)", "ERM", ">"),
    ("3. learned consistency training helps", "ITTA w/o test-time steps", "ERM+MixStyle", ">"),
    ("4. naive TTT hurts", "naive TTT (reset)", "TTT-trained, no steps", "<"),
    ("(descriptive) ITTA carry − reset", "ITTA (carry)", "ITTA (reset)", None),
    ("(descriptive) naive TTT − ERM", "naive TTT (reset)", "ERM", None),
    ("(descriptive) ERM+MixStyle − ERM", "ERM+MixStyle", "ERM", None),
]


def arm_values(runs: list[dict]) -> dict[str, dict[tuple[str, int], float]]:
    """arm -> {(held-out domain, seed): accuracy in points}."""
    out: dict[str, dict[tuple[str, int], float]] = {arm: {} for arm in ARMS}
    for run in runs:
        for arm, (method, key) in ARMS.items():
            if run["method"] == method and key in run["accuracy"]:
                out[arm][(run["heldout"], run["seed"])] = 100 * run["accuracy"][key]
    return out


def verdict(low: float, high: float, direction: str | None) -> str:
    if direction is None or math.isnan(low):
        return "–"
    if direction == ">":
        return "pass" if low > 0 else ("fails (below 0)" if high < 0 else "not resolved")
    return "pass" if high < 0 else ("fails (above 0)" if low > 0 else "not resolved")


def table(runs: list[dict]) -> str:
    values = arm_values(runs)
    domains = sorted({run["heldout"] for run in runs}, key=lambda d: (len(d), d))
    lines = ["| arm | units | accuracy (%) ± 95% CI |", "|---|---|---|"]
    for arm, by_unit in values.items():
        if by_unit:
            mean, half = mean_t_interval(list(by_unit.values()))
            lines.append(f"| {arm} | {len(by_unit)} | {mean:.2f} ± {half:.2f} |")
    lines += ["", "Paired differences in accuracy points on the (domain, seed) units both arms have:", "",
              "| comparison | units | difference ± 95% CI | verdict |", "|---|---|---|---|"]  # fmt: skip
    for name, arm, other, direction in COMPARISONS:
        units = sorted(set(values[arm]) & set(values[other]))
        if not units:
            continue
        mean, half = mean_t_interval([values[arm][u] - values[other][u] for u in units])
        lines.append(f"| {name}: {arm} − {other} | {len(units)} | {mean:+.2f} ± {half:.2f} | "
                     f"{verdict(mean - half, mean + half, direction)} |")  # fmt: skip
    lines += ["", "Mean accuracy (%) per held-out domain over the seeds done (seeds in brackets):", "",
              "| arm | " + " | ".join(f"{d}°" for d in domains) + " |", "|---" * (len(domains) + 1) + "|"]  # fmt: skip
    for arm, by_unit in values.items():
        cells = []
        for d in domains:
            got = [v for (h, _), v in by_unit.items() if h == d]
            cells.append(f"{statistics.fmean(got):.1f} ({len(got)})" if got else "–")
        lines.append(f"| {arm} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    runs = [json.loads(line) for line in (args.out / "runs.jsonl").read_text().splitlines() if line.strip()]
    text = table(runs)
    (args.out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
