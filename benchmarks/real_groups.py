"""Token groups from real text: AlpacaEval instructions with every generator's answer (../shared/data).

The ids are what grape scores: the Renderer's whole-text tokens (``paper`` template, end of response),
one group per instruction, its 15 candidates in file order.
"""

from __future__ import annotations

import json
from pathlib import Path

from grape.scoring.packing import TokenGroup
from grape.text.render import Renderer

ALPACA_EVAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "alpaca_eval" / "model_outputs.jsonl"


def alpaca_rows(n: int, max_chars: int | None = None, skip: int = 0) -> list[tuple[str, list[str]]]:
    """Instructions skip+1 .. skip+n in file order with their answers (each cut at ``max_chars``)."""
    if not ALPACA_EVAL.is_file():
        raise SystemExit(f"{ALPACA_EVAL} is absent: the real-text workload needs the shared AlpacaEval outputs")
    answers: dict[str, list[str]] = {}
    with ALPACA_EVAL.open() as lines:
        for line in lines:
            row = json.loads(line)
            if row["instruction"] not in answers and len(answers) == skip + n:
                continue
            answers.setdefault(row["instruction"], []).append(row["output"][:max_chars])
    return list(answers.items())[skip:]


def alpaca_groups(tokenizer, n: int, max_chars: int | None = None, skip: int = 0) -> list[TokenGroup]:
    """One TokenGroup per instruction (the prompt's ids as the first answer's whole text splits them)."""
    renderer = Renderer(tokenizer, "paper")
    groups = []
    for instruction, answers in alpaca_rows(n, max_chars, skip):
        encoded = renderer.encode(instruction, answers)
        groups.append(TokenGroup(encoded[0].prompt, [e.response for e in encoded]))
    return groups
