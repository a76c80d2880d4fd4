"""The pairs stage: from a scores table to preference pairs (TRL's ``prompt``/``chosen``/``rejected``).

Per instruction one pair: the chosen candidate by a strategy (GRAPE's best fit, a random one, one source's,
or S3FT's priority of sources) among the eligible ones, and the rejected candidate (the worst fit or a
random one) among the others. Every row carries the instruction id and both candidates' index, source and
fit, so a pair can be audited; instructions left without a pair are listed in the sidecar with the reason.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.data.read_rows import source_name
from grape.data.records import SCORED
from grape.data.tables import read_sidecar, table_file, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.selection.scores_table import read_scores_table
from grape.selection.settings import PairsSettings, check_pairs
from grape.selection.strategies import Row, Strategy, check_named_sources, get_strategy, rank_by_lowest_fit, rank_random

# Why an instruction has no pair (the sidecar's `instructions_without_pair`, the summary's counts).
NO_CHOSEN = "no_chosen_eligible"
NO_REJECTED = "no_rejected_eligible"
MARGIN = "margin_below_min"
UNREADABLE = "unreadable_row"
REASONS = (NO_CHOSEN, NO_REJECTED, MARGIN, UNREADABLE)


@dataclass(frozen=True)
class Rules:
    """`PairsSettings` with the table-dependent defaults resolved."""

    chosen: str
    chosen_from: str  # correct | all
    rejected: str  # lowest | random
    rejected_from: str  # incorrect | rest
    min_margin: float | None
    seed: int


def pairs(
    input: str | Path | list[Row],
    output: str | Path | None = None,
    settings: PairsSettings | None = None,
    **overrides: Any,
) -> tuple[list[Row], dict[str, Any]]:
    """One chosen/rejected pair per instruction; return (pair rows, summary) and write them if asked.

    ``input`` is a scores table (or its rows); ``overrides`` set fields of `PairsSettings`, e.g.
    ``pairs("scores.parquet", "pairs.jsonl", rejected="random", min_margin=0.1)``.
    """
    settings = with_overrides(PairsSettings, settings, overrides)
    check_pairs(settings)
    name = source_name(input)
    rows = read_scores_table(input)
    check_named_sources(settings.chosen, {r["source"] for r in rows if r["id"] is not None})
    rules = resolve(settings, verified=any(r.get("correct") is not None for r in rows))
    by_instruction: dict[str, list[Row]] = defaultdict(list)
    unpaired: list[Row] = []
    for row in rows:
        if row["id"] is None:  # a row the scorer could not read: accounted for here
            unpaired.append({"id": None, "row": row.get("row"), "reason": UNREADABLE, "status": row["status"]})
        else:
            by_instruction[row["id"]].append(row)
    made: list[Row] = []
    for ident, group in by_instruction.items():
        outcome = pair_instruction(group, rules)
        if isinstance(outcome, str):
            scored = sum(r["status"] == SCORED for r in group)
            unpaired.append({"id": ident, "row": group[0].get("row"), "reason": outcome, "candidates": len(group),
                             "scored": scored})  # fmt: skip
        else:
            made.append(pair_row(*outcome))
    summary = _summary(rows, made, unpaired, len(by_instruction), rules)
    if output is not None:
        write_rows(made, output)
        meta = {"stage": "pairs", "scores": None if table_file(input) is None else name,
                "settings": asdict(rules), "summary": summary,
                "instructions_without_pair": unpaired}  # fmt: skip
        if table_file(input) is not None:
            meta["score_settings"] = read_sidecar(input).get("settings")  # `grape dpo` renders the same text
        write_sidecar(output, meta)
    return made, summary


def resolve(settings: PairsSettings, verified: bool) -> Rules:
    """The rules for a table: `correct`/`incorrect` by default when it was verified, else `all`/`rest`."""
    chosen_from = settings.chosen_from or ("correct" if verified else "all")
    rejected_from = settings.rejected_from or ("incorrect" if verified else "rest")
    for flag, value, needs_verdicts in [("--chosen-from", chosen_from, "correct"),
                                        ("--rejected-from", rejected_from, "incorrect")]:  # fmt: skip
        if value == needs_verdicts and not verified:
            raise GrapeError(f"{flag} {value}: the scores table has no 'correct' column values (run grape verify)")
    return Rules(**{**asdict(settings), "chosen_from": chosen_from, "rejected_from": rejected_from})


def pair_instruction(rows: list[Row], rules: Rules) -> tuple[Row, Row] | str:
    """(chosen, rejected) among one instruction's scores rows, or the reason there is no pair.

    The rejected candidate is another scored candidate with another text (an identical answer teaches
    nothing), incorrect if ``rejected_from`` says so, and at least ``min_margin`` below the chosen one's fit.
    """
    scored = [r for r in rows if r["status"] == SCORED]
    chosen_pool = [r for r in scored if rules.chosen_from == "all" or r.get("correct") is True]
    ranked = get_strategy(rules.chosen)(chosen_pool, rules.seed)
    if not ranked:
        return NO_CHOSEN
    chosen = ranked[0]
    others = [r for r in scored if r["candidate"] != chosen["candidate"] and r["response"] != chosen["response"]]
    others = [r for r in others if rules.rejected_from == "rest" or r.get("correct") is False]
    if not others:
        return NO_REJECTED
    if rules.min_margin is not None:
        others = [r for r in others if chosen["mean_logprob"] - r["mean_logprob"] >= rules.min_margin]
        if not others:
            return MARGIN
    return chosen, _rank_rejected(rules.rejected)(others, rules.seed)[0]


def _rank_rejected(name: str) -> Strategy:
    if name == "lowest":
        return rank_by_lowest_fit
    return lambda rows, seed: rank_random(rows, seed, stream="rejected")  # a draw apart from the chosen one's


def pair_row(chosen: Row, rejected: Row) -> Row:
    """A TRL preference row: strings, or for a chat prompt the messages and one assistant turn each."""
    messages = json.loads(chosen["messages"]) if chosen.get("messages") else None
    if messages:
        turn = lambda r: [{"role": "assistant", "content": r["response"]}]  # noqa: E731
        pair: Row = {"prompt": messages, "chosen": turn(chosen), "rejected": turn(rejected)}
    else:
        pair = {"prompt": chosen["prompt"], "chosen": chosen["response"], "rejected": rejected["response"]}
    pair.update(
        id=chosen["id"],
        chosen_source=chosen["source"], rejected_source=rejected["source"],
        chosen_score=chosen["mean_logprob"], rejected_score=rejected["mean_logprob"],
        chosen_candidate=chosen["candidate"], rejected_candidate=rejected["candidate"],
        margin=chosen["mean_logprob"] - rejected["mean_logprob"],
        chosen_correct=chosen.get("correct"), rejected_correct=rejected.get("correct"),
    )  # fmt: skip
    if chosen.get("answer") is not None:
        pair["answer"] = chosen["answer"]
    return pair


def _summary(rows: list[Row], made: list[Row], unpaired: list[Row], n_instructions: int, rules: Rules) -> dict:
    scored = [r for r in rows if r["status"] == SCORED]
    reasons = Counter(u["reason"] for u in unpaired)
    return {
        **asdict(rules),
        "instructions": n_instructions,
        "unreadable_rows": reasons[UNREADABLE],
        "candidates": len(rows),
        "candidates_scored": len(scored),
        "pairs": len(made),
        "without_pair": {reason: reasons[reason] for reason in REASONS},
        "sources": {source: _per_source(source, scored, made) for source in sorted({str(r["source"]) for r in scored})},
        "mean_margin": _mean([p["margin"] for p in made]),
        "pairs_with_negative_margin": sum(p["margin"] < 0 for p in made),  # the model prefers the rejected one
        "chosen_correct": sum(p["chosen_correct"] is True for p in made),
        "rejected_incorrect": sum(p["rejected_correct"] is False for p in made),
    }


def _per_source(source: str, scored: list[Row], made: list[Row]) -> dict[str, Any]:
    """How many of the source's scored candidates became chosen and rejected ones, and their mean fit."""
    counts: dict[str, Any] = {"candidates": sum(str(r["source"]) == source for r in scored)}
    for side in ("chosen", "rejected"):
        mine = [p[f"{side}_score"] for p in made if str(p[f"{side}_source"]) == source]
        counts[side], counts[f"{side}_mean_logprob"] = len(mine), _mean(mine)
    return counts


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None
