"""The select stage: from a scores table to an SFT dataset in TRL's formats.

Every output row carries the instruction id, the chosen candidate, its source and its score, so a
choice can be audited. Instructions left with no eligible candidate are counted and listed in the
sidecar, not silently dropped.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.data.records import SCORED
from grape.data.tables import read_sidecar, table_file, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.selection.dataset_card import write_dataset_card
from grape.selection.scores_table import read_scores_table
from grape.selection.settings import FORMATS, SelectSettings
from grape.selection.strategies import Row, check_named_sources, get_strategy


def select(
    input: str | Path | list[Row],
    output: str | Path | None = None,
    settings: SelectSettings | None = None,
    **overrides: Any,
) -> tuple[list[Row], dict[str, Any]]:
    """Choose candidates per instruction; return (selected rows, summary) and write them if asked.

    ``input`` is a scores table (or its rows); ``overrides`` set fields of `SelectSettings`, e.g.
    ``select("scores.parquet", "selected.jsonl", strategy="lowest")``.
    """
    settings = with_overrides(SelectSettings, settings, overrides)
    strategy, top_k, format = settings.strategy, settings.top_k, settings.format
    require_correct, seed = settings.require_correct, settings.seed
    if format not in FORMATS:
        raise GrapeError(f"unknown format '{format}': use one of {FORMATS}")
    if top_k is not None and top_k < 1:
        raise GrapeError("--top-k must be at least 1")
    rank = get_strategy(strategy)
    scores = input
    rows = read_scores_table(scores)
    check_named_sources(strategy, {r["source"] for r in rows if r["id"] is not None})
    if require_correct and not any(r.get("correct") is not None for r in rows):
        raise GrapeError("--require-correct: the scores table has no 'correct' column values (run grape verify)")
    by_instruction: dict[str, list[Row]] = defaultdict(list)
    order: list[str] = []
    for row in rows:
        if row["id"] is None:
            continue  # an unreadable input row: counted in the summary below
        if row["id"] not in by_instruction:
            order.append(row["id"])
        by_instruction[row["id"]].append(row)
    chosen: list[Row] = []
    empty: list[str] = []
    limit = None if strategy == "all" else top_k
    for ident in order:
        eligible = [r for r in by_instruction[ident] if _eligible(r, require_correct)]
        ranked = rank(eligible, seed)[:limit]
        if not ranked:
            empty.append(ident)
        chosen.extend(_to_example(r, rank_index, format) for rank_index, r in enumerate(ranked))
    summary = _summary(rows, chosen, empty, len(order), strategy)
    if output is not None:
        write_rows(chosen, output)
        meta = {"stage": "select", "scores": None if table_file(scores) is None else str(scores),
                "settings": {**asdict(settings), "top_k": limit},
                "summary": summary, "instructions_without_candidate": empty}  # fmt: skip
        if table_file(scores) is not None:
            meta["score_settings"] = read_sidecar(scores).get("settings")
        write_sidecar(output, meta)
        write_dataset_card(output, meta)
    return chosen, summary


def _eligible(row: Row, require_correct: bool) -> bool:
    return row["status"] == SCORED and (not require_correct or row.get("correct") is True)


def _to_example(row: Row, rank: int, format: str) -> Row:
    messages = json.loads(row["messages"]) if row.get("messages") else None
    response = row["response"]
    if format == "messages":
        prompt_messages = messages or [{"role": "user", "content": row["prompt"]}]
        example: Row = {"messages": [*prompt_messages, {"role": "assistant", "content": response}]}
    elif messages:
        example = {"prompt": messages, "completion": [{"role": "assistant", "content": response}]}
    else:
        example = {"prompt": row["prompt"], "completion": response}
    example.update(
        id=row["id"],
        candidate=row["candidate"],
        source=row["source"],
        score=row["mean_logprob"],
        n_tokens=row["n_tokens"],
        rank=rank,
    )
    for key in ("answer", "correct"):
        if row.get(key) is not None:
            example[key] = row[key]
    return example


def _summary(rows: list[Row], chosen: list[Row], empty: list[str], n_instructions: int, strategy: str) -> dict:
    scored = [r for r in rows if r["status"] == SCORED]
    per_source = Counter(r["source"] for r in scored)
    chosen_per_source = Counter(r["source"] for r in chosen)
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return {
        "strategy": strategy,
        "instructions": n_instructions,
        "unreadable_rows": sum(1 for r in rows if r["id"] is None),
        "candidates": len(rows),
        "candidates_scored": len(scored),
        "selected": len(chosen),
        "instructions_without_candidate": len(empty),
        "sources": {
            str(source): {
                "candidates": count,
                "chosen": chosen_per_source.get(source, 0),
                "chosen_share": chosen_per_source.get(source, 0) / max(len(chosen), 1),
                "mean_logprob": mean([r["mean_logprob"] for r in scored if r["source"] == source]),
                "chosen_mean_logprob": mean([c["score"] for c in chosen if c["source"] == source]),
            }
            for source, count in sorted(per_source.items(), key=lambda kv: str(kv[0]))
        },
        "mean_logprob_all": mean([r["mean_logprob"] for r in scored]),
        "mean_logprob_selected": mean([r["score"] for r in chosen]),
    }
