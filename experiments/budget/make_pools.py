"""The Balancing-the-Budget experiment's pools, from GSM8K's human-labelled model solutions (../shared/data).

  .venv/bin/python experiments/budget/make_pools.py --out /work/budget-data

GSM8K's ``example_model_solutions.jsonl`` holds four model solutions per test problem, each with a human
``is_correct`` label; 731 problems have at least one right and one wrong solution: natural preference pairs.
Those 731 are shuffled once (``random.Random(0)``); the first ``--eval`` of them are the evaluation items, the
rest the pools. Per pool problem: chosen = its first correct solution and rejected = its first wrong one, in
the file's order (6b_finetuning, 6b_verification, 175b_finetuning, 175b_verification), passing by the few
degenerate solutions with no final answer line (a problem left without a right or a wrong one is left out); the
SFT example is the chosen solution, so SFT and DPO learn from the same kind of text. The solutions end with a line
``A: 18``; it is rewritten as GSM8K's ``#### 18`` (the form the math verifier and the answer-format rate read
first), and the ``<<a*b=c>>`` calculator marks are kept as they are (they are in every response, chosen or not).

Writes ``sft.jsonl`` (id, prompt, completion), ``pairs.jsonl`` (id, prompt, chosen, rejected), ``eval.jsonl``
(id, question, answer = the gold solution) and ``heldout.jsonl`` (id, prompt, completion = the gold solution).
Nothing is copied into the project: the files go to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import random
import re
from pathlib import Path

DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "gsm8k" / "example_model_solutions.jsonl"
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
FINAL = re.compile(r"\n?A: *(.+?)\s*$")


def gsm8k_form(solution: str) -> str:
    """A solution whose last line ``A: x`` becomes ``#### x``; ``ValueError`` when it has no such line."""
    match = FINAL.search(solution)
    if match is None:
        raise ValueError(f"no final 'A: ...' line in {solution[-60:]!r}")
    return f"{solution[: match.start()].rstrip()}\n#### {match.group(1)}"


def natural_pairs(rows: list[dict]) -> list[dict]:
    """One pair per problem with a right and a wrong solution that both end with their answer: the first correct
    and the first wrong, in SOLVERS order (a degenerate solution with no final line, e.g. "2727...", is passed by)."""
    pairs = []
    for number, row in enumerate(rows):
        right = [row[s]["solution"] for s in SOLVERS if row[s]["is_correct"] and FINAL.search(row[s]["solution"])]
        wrong = [row[s]["solution"] for s in SOLVERS if not row[s]["is_correct"] and FINAL.search(row[s]["solution"])]
        if right and wrong:
            pairs.append({"id": f"gsm8k-test-{number}", "question": row["question"],
                          "chosen": gsm8k_form(right[0]), "rejected": gsm8k_form(wrong[0]),
                          "gold": gsm8k_form(row["ground_truth"])})  # fmt: skip
    return pairs


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--eval", type=int, default=150, help="problems held out for evaluation")
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines()]
    pairs = natural_pairs(rows)
    random.Random(0).shuffle(pairs)
    held, pool = pairs[: args.eval], pairs[args.eval :]
    args.out.mkdir(parents=True, exist_ok=True)
    files = {
        "sft.jsonl": [{"id": p["id"], "prompt": p["question"], "completion": p["chosen"]} for p in pool],
        "pairs.jsonl": [{"id": p["id"], "prompt": p["question"], "chosen": p["chosen"], "rejected": p["rejected"]}
                        for p in pool],
        "eval.jsonl": [{"id": p["id"], "question": p["question"], "answer": p["gold"]} for p in held],
        "heldout.jsonl": [{"id": p["id"], "prompt": p["question"], "completion": p["gold"]} for p in held],
    }  # fmt: skip
    for name, file_rows in files.items():
        write_jsonl(args.out / name, file_rows)
    print(f"{len(pairs)} problems with a natural pair: {len(pool)} in the pools, {len(held)} held out -> {args.out}")


if __name__ == "__main__":
    main()
