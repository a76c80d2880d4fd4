"""The S3FT experiment's files, drawn once from ../shared/data (never copied into the project).

SVAMP (ReFT's release): the N-CoT training rows shuffled with ``random.Random(0)``; the first ``pool`` are the
fine-tuning pool (question, gold chain of thought as ``solution``, gold number as ``answer``), the next
``heldout`` the held-out gold solutions whose log-likelihood is the in-task fit; the test rows, shuffled the
same way, the first ``test`` for accuracy. AlpacaEval: ``alpaca`` instructions (shuffled with seed 0) with the
answers of a strong generator (gpt4_1106_preview): the general-instruction text whose log-likelihood measures
forgetting.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
STRONG = "gpt4_1106_preview"


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _shuffled(rows: list[dict]) -> list[dict]:
    rows = list(rows)
    random.Random(0).shuffle(rows)
    return rows


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def write_data(folder: Path, pool: int, heldout: int, test: int, alpaca: int) -> dict[str, Path]:
    """pool.jsonl, heldout.jsonl (prompt/completion), test.jsonl, alpaca.jsonl (prompt/completion) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    train = _shuffled(_rows(SHARED / "svamp" / "train_nl.jsonl"))
    tests = _shuffled(_rows(SHARED / "svamp" / "test.jsonl"))
    outputs = [r for r in _rows(SHARED / "alpaca_eval" / "model_outputs.jsonl") if r["generator"] == STRONG]
    strong = _shuffled(outputs)[:alpaca]
    rows = {
        "pool": [{"id": r["item_id"], "question": r["question"], "answer": r["answer_value"],
                  "solution": r["answer_cot"]} for r in train[:pool]],
        "heldout": [{"id": r["item_id"], "prompt": r["question"], "completion": r["answer_cot"]}
                    for r in train[pool : pool + heldout]],
        "test": [{"id": r["item_id"], "question": r["question"], "answer": r["answer_value"]} for r in tests[:test]],
        "alpaca": [{"id": f"alpaca-{i}", "prompt": r["instruction"], "completion": r["output"]}
                   for i, r in enumerate(strong)],
    }  # fmt: skip
    return {name: _write(folder / f"{name}.jsonl", file_rows) for name, file_rows in rows.items()}
