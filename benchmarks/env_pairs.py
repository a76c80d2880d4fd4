"""A setting that only a new process can take (an environment variable read once at start-up), measured as pairs of
processes: score_bench.py run with and without it, back to back, the order alternating from pair to pair.

    .venv/bin/python benchmarks/env_pairs.py THP_MEM_ALLOC_ENABLE=1 --pairs 7 --json docs/thp_pairs_default8.json

Each process runs ``score_bench.py --instructions 8 --compile --skip-baselines --rounds R`` (the compiled engine on
the default workload; extra score_bench flags after ``--``). Per pair: with / without in median tokens/s, and both
processes' useful FLOPs over their rounds' peaks (useful/rpeak). Two processes run back to back differ by more than
two rounds of one process do, so a small effect needs many pairs: the script prints each pair's ratio as it comes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from measure import machine_state
from round_stats import spread_of

HERE = Path(__file__).resolve().parent


def one_process(env_setting: dict[str, str] | None, rounds: int, extra: list[str]) -> dict:
    """score_bench.py in a fresh process, with ``env_setting`` added to this process's environment."""
    env = {**os.environ, **(env_setting or {})}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "run.json"
        command = [sys.executable, str(HERE / "score_bench.py"), "--instructions", "8", "--compile",
                   "--skip-baselines", "--rounds", str(rounds), "--json", str(out), *extra]  # fmt: skip
        subprocess.run(command, env=env, cwd=HERE, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        record = json.loads(out.read_text())
    engine = record["methods"]["engine"]
    return {"tokens_per_s": engine["tokens_per_s"]["median"], "useful_of_round_peak":
            engine["useful_of_round_peak"]["median"], "load": record["load_average_1min"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("setting", help="NAME=VALUE, set in one process of each pair and unset in the other")
    parser.add_argument("--pairs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3, help="score_bench rounds per process")
    parser.add_argument("--json", type=Path)
    parser.add_argument("extra", nargs="*", help="more score_bench.py flags, after --")
    args = parser.parse_args()
    name, _, value = args.setting.partition("=")
    if name in os.environ:
        raise SystemExit(f"{name} is set in this shell: unset it, or the 'without' process inherits it")
    pairs = []
    for index in range(args.pairs):
        order = ["with", "without"] if index % 2 == 0 else ["without", "with"]
        runs = {arm: one_process({name: value} if arm == "with" else None, args.rounds, args.extra) for arm in order}
        ratio = runs["with"]["tokens_per_s"] / runs["without"]["tokens_per_s"]
        pairs.append({"order": order, **runs, "ratio": ratio})
        shares = [100 * runs[arm]["useful_of_round_peak"] for arm in ("with", "without")]
        print(f"pair {index + 1} ({' then '.join(order)}): with / without {ratio:.3f}; useful/rpeak "
              f"{shares[0]:.1f}% / {shares[1]:.1f}%", flush=True)  # fmt: skip
    ratios = [p["ratio"] for p in pairs]
    print(
        f"with / without, per pair: {spread_of(ratios).brief()}; sorted: {' '.join(f'{r:.3f}' for r in sorted(ratios))}"
    )
    if args.json:
        report = {"machine": machine_state(torch.device("cpu")), "setting": args.setting, "rounds": args.rounds,
                  "pairs": pairs, "ratio": spread_of(ratios).as_dict()}  # fmt: skip
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
