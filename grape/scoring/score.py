"""The score stage: read candidates, render and tokenise, score with the target model, write a table.

One output row per input candidate (and one per unreadable input row), each with a status:
``scored`` or ``skipped:<reason>``. Nothing is dropped. With an output path the work is saved in
parts as it goes (see resume.py), so a run that is killed resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa

from grape.config import with_overrides
from grape.models.fingerprint import fingerprint_method, loaded_fingerprint, model_fingerprint
from grape.models.load import LoadedModel, load_model, resolve_device, resolve_dtype
from grape.scoring.assemble import SCORES_SCHEMA
from grape.scoring.chunk_scorer import ChunkScorer
from grape.scoring.progress import scoring_progress
from grape.scoring.rate import RateMeter
from grape.scoring.resume import Chunk, ScoreJob
from grape.scoring.settings import ScoreSettings
from grape.scoring.template_note import note_chat_template

__all__ = ["SCORES_SCHEMA", "ScoreSettings", "score"]


def score(
    input: str | Path,
    output: str | Path | None = None,
    settings: ScoreSettings | None = None,
    loaded: LoadedModel | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Score every candidate in ``input`` with the target model; return (and write) the scores rows.

    ``overrides`` set fields of `ScoreSettings`, e.g. ``score("in.jsonl", model="gemma-3-270m")``.
    With ``output``, finished parts are kept in ``<output>.parts/`` and a re-run scores only the rest.
    """
    settings = with_overrides(ScoreSettings, settings, overrides)
    identity: dict[str, Any] = {}

    def model_and_dtype() -> tuple[str, str]:
        if loaded is not None:  # the model in memory may differ from any file: fingerprint what is loaded
            identity.update(loaded.identity)
            return loaded_fingerprint(loaded), _name(loaded.dtype)
        dtype = _name(resolve_dtype(settings.dtype, resolve_device(settings.device)))
        identity.update(spec=settings.model, dtype=dtype)  # completed by load_model, if the model is loaded
        return model_fingerprint(settings.model), dtype

    extra: dict[str, Any] = {}
    with ScoreJob(input, output, settings, model_and_dtype) as job:
        if job.pending:
            model = loaded or load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
            identity.update(model.identity)
            note_chat_template(model.tokenizer, settings.template, settings.model)
            scorer = ChunkScorer(model, settings.template, settings.eos, settings.engine)
            with scoring_progress(job.total_candidates, job.done_candidates) as advance:
                meter = RateMeter(advance, model.device.type)
                for chunk in job.pending:
                    job.record(chunk, _score_chunk(scorer, chunk, meter.advance))
            extra["rate"] = meter.rate().record()  # read back by `grape score --dry-run` to estimate a run's time
        fingerprint = job.described["model"]
        method = fingerprint_method(fingerprint)
        return job.finish({**identity, "fingerprint": fingerprint, "fingerprint_method": method}, extra)


def _score_chunk(scorer: ChunkScorer, chunk: Chunk, advance: Callable[[int, int], None]) -> pa.Table:
    """Score a chunk, moving the bar as the engine goes and then past what was skipped while tokenising."""
    reported = 0

    def on_batch(n_candidates: int, n_tokens: int) -> None:
        nonlocal reported
        reported += n_candidates
        advance(n_candidates, n_tokens)

    table = scorer.score(chunk.items, on_batch=on_batch)
    advance(max(0, chunk.n_candidates - reported), 0)
    return table


def _name(dtype: Any) -> str:
    return str(dtype).removeprefix("torch.")
