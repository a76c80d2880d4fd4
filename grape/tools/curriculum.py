"""iTool's warm-up from easy to hard: tool-calling rows ordered by how hard the data says they are.

A row's difficulty is three counts read from the data: ``calls`` (the gold calls: 0 where no call is right),
``tools`` (the tools offered) and ``arguments`` (the arguments the gold calls must give: those whose accepted
values do not include ``""``). The rows are sorted by them in that order, each breaking the ties of the one
before, and input order last (a stable sort).

Why this order: BFCL's own categories rise in difficulty the same way (its leaderboard's accuracy falls from
``simple``, one tool and one call, to ``multiple``, one call chosen among several tools, to ``parallel``
and ``parallel_multiple``, several calls): writing several calls is the hardest step, choosing among tools the
next, and more arguments to fill the last. ``order`` in the settings changes the precedence.

`grape sft` shuffles its rows (transformers' random sampler): train the ordered file with
``trainer: {train_sampling_strategy: sequential}`` (``--trainer-arg train_sampling_strategy=sequential``) to
keep the order, and one epoch or less (a second epoch starts over from the easy rows).
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.data.read_rows import source_name
from grape.data.tables import read_sidecar, read_table_rows, write_rows, write_sidecar
from grape.errors import InputError
from grape.tools.calls import OPTIONAL, GoldError, read_gold
from grape.tools.curriculum_settings import CurriculumSettings, check_curriculum
from grape.tools.tool_docs import ToolDocError, read_tools

Row = dict[str, Any]


def difficulty(row: Row) -> dict[str, int]:
    """The counts a row is ranked by: gold calls, tools offered, required arguments of the gold calls.

    Raises `GoldError` or `ToolDocError` for an answer or tools that cannot be read."""
    gold = read_gold(row["answer"])
    tools = read_tools(row.get("tools", row.get("function")))
    arguments = sum(OPTIONAL not in values for call in gold for values in call.accepted.values())
    return {"calls": len(gold), "tools": len(tools), "arguments": arguments}


def easy_to_hard(difficulties: list[dict[str, int]], order: list[str]) -> list[int]:
    """The row indices from easiest to hardest: sorted by the counts named in ``order``, input order last."""
    return sorted(range(len(difficulties)), key=lambda i: (*(difficulties[i][c] for c in order), i))


def curriculum(input: str | Path, output: str | Path | None = None, settings: CurriculumSettings | None = None,
               **overrides: Any) -> tuple[list[Row], dict[str, Any]]:  # fmt: skip
    """The trainable rows of ``input`` from easy to hard, each with its ``difficulty``; return (rows, summary)
    and write them (JSONL) with the sidecar if asked. A row without a completion or an answer key cannot be
    trained or ranked: it is listed in the sidecar with the reason."""
    settings = with_overrides(CurriculumSettings, settings, overrides)
    check_curriculum(settings)
    started = time.time()
    rows = read_table_rows(input)
    if not rows:
        raise InputError(source_name(input), None, None, "no rows: nothing to rank")
    ranked, counts, left_out = [], [], []
    for number, row in enumerate(rows, start=1):
        if not isinstance(row.get("completion"), str) or not row["completion"].strip():
            left_out.append({"id": row.get("id"), "row": number, "reason": "no completion to train on"})
            continue
        if row.get("answer") is None:
            left_out.append({"id": row.get("id"), "row": number, "reason": "no answer key to rank by"})
            continue
        try:
            counts.append(difficulty(row))
        except (GoldError, ToolDocError) as exc:
            field = "answer" if isinstance(exc, GoldError) else "tools"
            raise InputError(str(input), number, field, str(exc)) from exc
        ranked.append(row)
    out = [{**ranked[i], "difficulty": counts[i]} for i in easy_to_hard(counts, settings.order)]
    summary = {"rows": len(rows), "ordered": len(out), "left_out": len(left_out),
               "seconds": round(time.time() - started, 2)}  # fmt: skip
    if output is not None:
        write_rows(out, output)
        meta = {"stage": "itool-curriculum", "input": source_name(input), "settings": asdict(settings),
                "summary": summary, "left_out": left_out}  # fmt: skip
        scored = read_sidecar(input).get("score_settings")
        if scored:  # what `grape sft` takes as its defaults, as from the rows themselves
            meta["score_settings"] = scored
        write_sidecar(output, meta)
    return out, summary
