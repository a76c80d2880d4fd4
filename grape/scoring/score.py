"""The score stage: read candidates, render and tokenise, score with the target model, write a table.

One output row per input candidate (and one per unreadable input row), each with a status:
``scored`` or ``skipped:<reason>``. Nothing is dropped.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from grape.console import progress_bar
from grape.data.layout import Columns, load_instructions
from grape.data.records import SCORED, Instruction, skipped
from grape.data.tables import write_rows, write_sidecar
from grape.errors import InputError
from grape.models.embedded import DEFAULT_TARGET
from grape.models.load import LoadedModel, load_model
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup
from grape.scoring.render import PromptError, Renderer

SCORES_SCHEMA = pa.schema([
    ("id", pa.string()), ("candidate", pa.int64()), ("source", pa.string()), ("n_tokens", pa.int64()),
    ("sum_logprob", pa.float64()), ("mean_logprob", pa.float64()), ("status", pa.string()),
    ("row", pa.int64()), ("prompt", pa.string()), ("messages", pa.string()), ("response", pa.string()),
    ("answer", pa.string()), ("correct", pa.bool_()),
])  # fmt: skip


@dataclass
class ScoreSettings:
    model: str = DEFAULT_TARGET
    template: str = "paper"  # paper | chat | raw | path to a .jinja file
    eos: bool = True
    dtype: str = "auto"
    device: str = "auto"
    on_error: str = "fail"
    layout: str = "auto"
    columns: Columns = field(default_factory=Columns)
    split: str | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    trust_remote_code: bool = False


def score(
    input: str | Path,
    output: str | Path | None = None,
    settings: ScoreSettings | None = None,
    loaded: LoadedModel | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Score every candidate in ``input`` with the target model; return (and write) the scores rows.

    ``overrides`` set fields of `ScoreSettings`, e.g. ``score("in.jsonl", model="gemma-3-270m")``.
    """
    settings = settings or ScoreSettings()
    for key, value in overrides.items():
        setattr(settings, key, value)
    started = time.time()
    instructions = load_instructions(input, settings.columns, settings.layout, settings.on_error, settings.split)
    loaded = loaded or load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
    renderer = Renderer(loaded.tokenizer, settings.template, settings.eos)
    groups, owners = _tokenise(instructions, renderer, _context_length(loaded), settings.on_error)
    engine = ScoringEngine(loaded.model, settings.engine)
    results = _run_with_progress(engine, groups)
    rows = _rows(instructions, owners, results)
    if output is not None:
        write_rows(rows, output, SCORES_SCHEMA)
        write_sidecar(output, {
            "stage": "score", "input": str(input), "settings": _settings_dict(settings), "model": loaded.identity,
            "counts": _counts(rows), "seconds": round(time.time() - started, 2),
        })  # fmt: skip
    return rows


def _context_length(loaded: LoadedModel) -> int:
    limits = [getattr(loaded.model.config, "max_position_embeddings", None)]
    model_max = getattr(loaded.tokenizer, "model_max_length", None)
    if model_max and model_max < 10**9:  # tokenizers without a limit report a huge sentinel
        limits.append(model_max)
    return min(x for x in limits if x) if any(limits) else 10**9


def _tokenise(instructions: list[Instruction], renderer: Renderer, max_len: int, on_error: str):
    """TokenGroups for the scorable candidates, and (instruction, candidate indices) owning each group."""
    live = [i for i in instructions if not i.skip_reason and any(c.skip_reason is None for c in i.candidates)]
    prompts: list[list[int] | None] = []
    for inst in live:
        try:
            prompts.append(renderer.prompt_ids([inst.prompt])[0])
        except PromptError as exc:
            if on_error == "fail":
                raise InputError(inst.file, inst.row, "prompt", str(exc)) from exc
            inst.skip_reason = "invalid_prompt"
            prompts.append(None)
    groups, owners = [], []
    for inst, prompt in zip(live, prompts, strict=True):
        if prompt is None:
            continue
        keep = [k for k, c in enumerate(inst.candidates) if c.skip_reason is None]
        responses = renderer.response_ids([inst.candidates[k].text for k in keep])
        for k, ids in zip(list(keep), responses, strict=True):
            if len(prompt) + len(ids) > max_len:
                message = f"prompt + response is {len(prompt) + len(ids)} tokens, over the model's {max_len}"
                if on_error == "fail":
                    raise InputError(inst.file, inst.candidates[k].row or inst.row, f"candidates[{k}]", message)
                inst.candidates[k].skip_reason = "too_long"
        kept = [(k, ids) for k, ids in zip(keep, responses, strict=True) if inst.candidates[k].skip_reason is None]
        if kept:
            groups.append(TokenGroup(prompt, [ids for _, ids in kept]))
            owners.append((inst, [k for k, _ in kept]))
    return groups, owners


def _run_with_progress(engine: ScoringEngine, groups: list[TokenGroup]):
    total = sum(len(g.responses) for g in groups)
    started, tokens = time.time(), 0
    with progress_bar() as bar:
        task = bar.add_task("Scoring candidates", total=total, rate="")

        def advance(n_candidates: int, n_tokens: int) -> None:
            nonlocal tokens
            tokens += n_tokens
            rate = f"{tokens / max(time.time() - started, 1e-9):,.0f} tok/s"
            bar.update(task, advance=n_candidates, rate=rate)

        return engine.score(groups, on_batch=advance)


def _rows(instructions: list[Instruction], owners, results) -> list[dict[str, Any]]:
    scores: dict[tuple[int, int], tuple[float, int]] = {}
    for (inst, keep), result in zip(owners, results, strict=True):
        for j, k in enumerate(keep):
            scores[id(inst), k] = (float(result.sum_logprob[j]), int(result.n_tokens[j]))
    rows = []
    for inst in instructions:
        common = {
            "id": inst.id, "row": inst.row,
            "prompt": inst.prompt_text, "messages": json.dumps(inst.messages) if inst.messages else None,
            "answer": _json_or_none(inst.answer),
        }  # fmt: skip
        if not inst.candidates:
            rows.append({**common, "candidate": None, "source": None, "status": skipped(inst.skip_reason)})
            continue
        for k, cand in enumerate(inst.candidates):
            row = {
                **common,
                "candidate": k,
                "source": cand.source,
                "response": cand.text,
                "row": cand.row or inst.row,
                "correct": cand.extra.get("correct"),
            }
            if (id(inst), k) in scores:
                total, n = scores[id(inst), k]
                row.update(n_tokens=n, sum_logprob=total, mean_logprob=total / n, status=SCORED)
            else:
                row["status"] = skipped(cand.skip_reason or inst.skip_reason or "unscored")
            rows.append(row)
    return rows


def _json_or_none(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _counts(rows: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {"rows": len(rows)}
    for row in rows:
        counts[row["status"]] = counts.get(row["status"], 0) + 1
    return counts


def _settings_dict(settings: ScoreSettings) -> dict[str, Any]:
    return asdict(settings)
