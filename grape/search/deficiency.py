"""`grape itool deficiency`: the rows the current model fits worst, which iTool searches and trains on next.

Each row's gold answer (its ``completion``) is scored under the current model with grape's scorer
(grape.scoring.score: the mean log-prob per token of the whole text's response tokens, end marker included),
and within each group, rows with calls and rows where no call is right (``answer: []``), the ``fraction``
(30%) of lowest fit is kept: the highest perplexity, as the official code's ``active_select`` keeps, which
groups by whether the answer holds a ``)`` and keeps ``int(n · ratio)`` rows of a group of n (here too: a group
of 3 keeps none at 30%).

Output: the kept rows as they were, in their input order, with ``fit`` and ``group`` added. The sidecar lists
every other row with its fit and why it was left out (above its group's share, or not scorable: no gold text,
no answer key, or a status of the scorer's), and passes on how the rows are rendered (``score_settings``).
"""

from __future__ import annotations

import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.data.read_rows import source_name
from grape.data.records import SCORED
from grape.data.tables import read_sidecar, read_table_rows, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.models.load import LoadedModel, load_model
from grape.scoring.score import score
from grape.scoring.settings import ScoreSettings
from grape.search.settings import DeficiencySettings, check_deficiency, with_row_defaults

Row = dict[str, Any]
CALLS, NO_CALL = "calls", "no call"


def deficient_indices(groups: list[str], fits: list[float], fraction: float) -> list[int]:
    """The indices kept: in each group the ``int(n · fraction)`` of lowest fit (the earlier of equals first),
    returned in increasing order."""
    kept: list[int] = []
    for group in dict.fromkeys(groups):
        members = sorted((i for i, g in enumerate(groups) if g == group), key=lambda i: (fits[i], i))
        kept += members[: int(len(members) * fraction + 1e-9)]
    return sorted(kept)


def deficiency(input: str | Path, output: str | Path | None = None, settings: DeficiencySettings | None = None,
               loaded: LoadedModel | None = None, **overrides: Any) -> tuple[list[Row], dict[str, Any]]:  # fmt: skip
    """Score every row's gold answer and keep the worst-fitting share of each group; return (rows, summary)
    and write them (JSONL) with the sidecar if asked. ``overrides`` set fields of `DeficiencySettings`."""
    settings = with_overrides(DeficiencySettings, settings, overrides)
    check_deficiency(settings)
    started = time.time()
    settings = with_row_defaults(settings, read_sidecar(input))
    if loaded is None and not settings.model:
        raise GrapeError(f"{input}: no model to measure the fit with: give --model (the rows' sidecar names none)")
    rows = read_table_rows(input)
    loaded = loaded or load_model(settings.model or "", settings.dtype, settings.device, settings.trust_remote_code)
    template = settings.template or ("chat" if getattr(loaded.tokenizer, "chat_template", None) else "paper")
    settings = replace(settings, template=template, eos=True if settings.eos is None else settings.eos)
    left_out: list[Row] = []
    scorable: dict[str, int] = {}  # the scorer's id -> index in rows
    for index, row in enumerate(rows):
        reason = _unscorable(row)
        if reason:
            left_out.append({"id": row.get("id"), "row": index + 1, "reason": reason})
        else:
            scorable[f"row-{index + 1}"] = index
    items = [{"id": key, "prompt": rows[i]["prompt"], "candidates": [{"text": rows[i]["completion"], "source": "gold"}]}
             for key, i in scorable.items()]  # fmt: skip
    scored = {}
    if items:
        score_settings = ScoreSettings(model=settings.model or "", template=template, eos=settings.eos,
                                       trust_remote_code=settings.trust_remote_code)  # fmt: skip
        for result in score(items, None, score_settings, loaded=loaded):
            index = scorable[result["id"]]
            if result["status"] == SCORED:
                scored[index] = result["mean_logprob"]
            else:
                left_out.append({"id": rows[index].get("id"), "row": index + 1, "reason": result["status"]})
    order = sorted(scored)
    groups = [NO_CALL if rows[i]["answer"] == [] else CALLS for i in order]
    kept = {order[k] for k in deficient_indices(groups, [scored[i] for i in order], settings.fraction)}
    out = [{**rows[i], "fit": scored[i], "group": g} for i, g in zip(order, groups, strict=True) if i in kept]
    left_out += [{"id": rows[i].get("id"), "row": i + 1, "group": g, "fit": scored[i],
                  "reason": f"not among its group's {settings.fraction:.0%} of lowest fit"}
                 for i, g in zip(order, groups, strict=True) if i not in kept]  # fmt: skip
    left_out.sort(key=lambda entry: entry["row"])
    summary = {"rows": len(rows), "scored": len(scored), "kept": len(out),
               "kept_by_group": {g: sum(r["group"] == g for r in out) for g in (CALLS, NO_CALL)},
               "scored_by_group": {g: groups.count(g) for g in (CALLS, NO_CALL)},
               "seconds": round(time.time() - started, 2)}  # fmt: skip
    if output is not None:
        write_rows(out, output)
        write_sidecar(output, {"stage": "itool-deficiency", "input": source_name(input), "settings": asdict(settings),
                               "summary": summary, "model": loaded.identity, "left_out": left_out,
                               "score_settings": {"model": settings.model, "template": template,
                                                  "eos": settings.eos}})  # fmt: skip
    return out, summary


def _unscorable(row: Row) -> str | None:
    if row.get("answer") is None:
        return "no answer key (the group, calls or no call, is unknown)"
    if not isinstance(row.get("completion"), str) or not row["completion"].strip():
        return "no gold text (completion) to score"
    if row.get("prompt") is None:
        return "no prompt"
    return None
