"""The generate stage: sample candidates from several generators and add them to the pool.

Each generator may have its own template (a Jinja file that sees the row's fields, e.g. the gold answer
to paraphrase) and its own sampling (greedy for the target's own answer, sampled for the others);
``reference_field`` adds the row's gold answer as one more candidate, source ``reference`` (S3FT's
self / paraphrase / reference pool in one run); ``limit`` works on the first N input rows.

Resumable: every finished completion is appended at once to ``<output>.journal.jsonl``; a re-run reads
the output and the journal and skips each (instruction, generator, sample) that is already there, so
nothing is generated twice (work.py). The grouped output is written (atomically) at the end, and the
journal removed. Generators run one after another, so that only one model is in memory at a time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.console import console, progress_bar
from grape.data.pool import Row
from grape.data.read_rows import source_name
from grape.data.tables import write_rows, write_sidecar
from grape.generation.backend import Backend, Completion, GeneratorSpec, Sampling, check_batching
from grape.generation.reference import add_references
from grape.generation.settings import GenerateSettings
from grape.generation.work import (
    Work,
    candidate_of,
    close_journal,
    generator_specs,
    journal_path,
    made_with,
    pending,
    prepare,
    row_counts,
)

__all__ = ["GeneratorReport", "generate", "journal_path", "open_backend", "summary_rows"]


@dataclass
class GeneratorReport:
    name: str
    requested: int = 0  # (instruction, sample) pairs asked for
    existing: int = 0  # already in the output or the journal
    generated: int = 0
    failed: int = 0
    tokens: int = 0
    characters: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)  # the first few failure messages


def generate(
    input: str | Path,
    output: str | Path,
    settings: GenerateSettings | None = None,
    backends: dict[str, Backend] | None = None,
    **overrides: Any,
) -> tuple[list[Row], list[GeneratorReport]]:
    """Add ``sampling.n`` samples per instruction from each generator; return (the output's rows, reports).

    ``overrides`` set fields of `GenerateSettings`, e.g. ``generate("p.jsonl", "pool.jsonl", models=["gemma-3-270m"])``;
    ``backends`` maps a generator's name to a backend already built (e.g. a model loaded once in tests).
    """
    settings = with_overrides(GenerateSettings, settings, overrides)
    check_batching(settings.batching)
    specs = generator_specs(settings)
    output, journal = Path(output), journal_path(output)
    work = prepare(input, output, settings)
    reference = add_references(work.todo.values(), settings.reference_field) if settings.reference_field else None
    generators = dict(work.meta.get("generators", {}))
    reports = []
    for spec in specs:
        sampling = spec.sampling_over(settings.sampling)
        backend = (backends or {}).get(spec.name)
        report, identity = _run_generator(spec, sampling, settings, work, journal, backend)
        reports.append(report)
        if identity is not None:
            made = made_with(spec, settings)
            measured = _measured(generators.get(spec.name), made["spec"], report)
            generators[spec.name] = {**identity, **made, "measured": measured}
    write_rows(work.rows, output)
    meta = {"stage": "generate", "input": source_name(input), "settings": asdict(settings), "generators": generators,
            "reports": [asdict(r) for r in reports], "rows": row_counts(work)}  # fmt: skip
    if reference is not None:
        meta["reference"] = asdict(reference)
    write_sidecar(output, meta)
    close_journal(journal, work.leftover)  # everything this output holds is in it now
    return work.rows, reports


def _run_generator(spec: GeneratorSpec, sampling: Sampling, settings: GenerateSettings, work: Work, journal: Path,
                   backend: Backend | None):  # fmt: skip
    report = GeneratorReport(spec.name)
    requests, report.existing = pending(work, spec.name, sampling.n)
    report.requested = report.existing + len(requests)
    if not requests:
        console.print(f"{spec.name}: all {report.requested} samples already there")
        return report, None
    if sampling.greedy and sampling.n > 1:
        console.print(f"[yellow]{spec.name}: temperature 0 (greedy) makes all {sampling.n} samples the same[/]")
    owned = backend is None
    backend = backend or open_backend(spec, settings)
    started = time.time()
    try:
        identity = backend.identity()
        with progress_bar() as bar, journal.open("a", encoding="utf-8") as sink:
            task = bar.add_task(f"Generating with {spec.name}", total=len(requests), rate="")
            for completion in backend.generate(requests, sampling):
                _record(completion, spec.name, report, work, sink)
                rate = f"{report.tokens / max(time.time() - started, 1e-9):,.1f} tok/s"
                bar.update(task, advance=1, rate=rate)
    finally:
        report.seconds = time.time() - started
        if owned:
            backend.close()
    return report, identity


def _record(completion: Completion, name: str, report: GeneratorReport, work: Work, sink) -> None:
    request = completion.request
    if completion.text is None:
        report.failed += 1
        if len(report.errors) < 5:
            report.errors.append(f"{request.id}/{request.sample}: {completion.error}")
        return
    entry = {"id": request.id, "source": name, "sample": request.sample, "text": completion.text,
             "n_tokens": completion.n_tokens, "finish_reason": completion.finish_reason}  # fmt: skip
    sink.write(json.dumps(entry, ensure_ascii=False) + "\n")
    sink.flush()  # on disk before it counts as done: a kill loses at most the line being written
    work.done.add((request.id, name, request.sample))
    work.todo[request.id]["candidates"].append(candidate_of(entry))
    report.generated += 1
    report.tokens += completion.n_tokens or 0
    report.characters += len(completion.text)


def _measured(previous: dict[str, Any] | None, spec: str, report: GeneratorReport) -> dict[str, Any]:
    """Candidates, tokens and generation seconds of every run of this generator into this output (loading
    excluded): the rate a dry run estimates from. A generator that now names another model starts anew."""
    before = (previous or {}).get("measured") if (previous or {}).get("spec") == spec else None
    before = before or {"candidates": 0, "tokens": 0, "seconds": 0.0}
    return {"candidates": before["candidates"] + report.generated, "tokens": before["tokens"] + report.tokens,
            "seconds": round(before["seconds"] + report.seconds, 3)}  # fmt: skip


def open_backend(spec: GeneratorSpec, settings: GenerateSettings) -> Backend:
    """Build the backend a generator spec names (loading its model), in its own template or the shared one."""
    template = spec.template or settings.prompt_format
    if spec.backend == "hf":
        from grape.generation.hf_backend import HFBackend

        return HFBackend(spec.model, template, settings.batch_size, settings.dtype, settings.device,
                         settings.trust_remote_code, settings.batching)  # fmt: skip
    if spec.backend == "openai":
        from grape.generation.openai_backend import OpenAIBackend

        jinja = template if Path(template).is_file() else None  # the server applies its chat template otherwise
        return OpenAIBackend(spec.model, spec.base_url or settings.base_url, settings.api_key_env, settings.http, jinja)
    from grape.generation.vllm_backend import VLLMBackend

    return VLLMBackend(spec.model, template)


def summary_rows(reports: list[GeneratorReport]) -> list[tuple[Any, ...]]:
    """One row per generator: name, new, already there, failed, mean tokens, mean characters, tok/s."""
    out = []
    for r in reports:
        mean_tokens = r.tokens / r.generated if r.generated else 0.0
        mean_chars = r.characters / r.generated if r.generated else 0.0
        rate = r.tokens / r.seconds if r.seconds else 0.0
        out.append((r.name, r.generated, r.existing, r.failed,
                    f"{mean_tokens:.1f}", f"{mean_chars:.0f}", f"{rate:.1f}"))  # fmt: skip
    return out
