"""The generate stage: sample candidates from several generators and add them to the pool.

Resumable: every finished completion is appended at once to ``<output>.journal.jsonl``; a re-run reads
the output and the journal and skips each (instruction, generator, sample) that is already there, so
nothing is generated twice. The grouped output is written (atomically) at the end, and the journal
removed. Generators run one after another, so that only one model is in memory at a time.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.console import console, progress_bar
from grape.data.pool import SKIP_KEY, Row, prompt_of, read_pool, same_instructions
from grape.data.tables import read_sidecar, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.generation.backend import Backend, Completion, GeneratorSpec, Request
from grape.generation.settings import GenerateSettings


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
    """Add ``settings.sampling.n`` samples per instruction from each generator; return (rows, reports).

    ``overrides`` set fields of `GenerateSettings`, e.g. ``generate("p.jsonl", "pool.jsonl", models=["gemma-3-270m"])``;
    ``backends`` maps a generator's name to a backend already built (e.g. a model loaded once in tests).
    """
    settings = with_overrides(GenerateSettings, settings, overrides)
    specs = [GeneratorSpec.parse(m) for m in settings.models]
    if not specs:
        raise GrapeError("no generator: pass at least one --model")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise GrapeError(f"two generators share a name in {names}: name them, e.g. --model small=hf:MODEL")
    if settings.sampling.n < 1:
        raise GrapeError("-n must be at least 1")
    output, journal = Path(output), journal_path(output)
    rows = read_pool(input, settings.columns, settings.layout, settings.on_error, settings.split,
                     settings.subset, settings.revision)  # fmt: skip
    if output.is_file():  # extend (or resume) what is there; it already holds the input's candidates
        existing = read_pool(output, on_error="skip")
        same_instructions(existing, rows, str(output))
        rows = existing
    by_id = {r["id"]: r for r in rows if not r.get(SKIP_KEY)}
    done = {(i, c.get("source"), c.get("sample")) for i, r in by_id.items() for c in r["candidates"]}
    for entry in read_journal(journal):
        key = (entry["id"], entry["source"], entry["sample"])
        if entry["id"] in by_id and key not in done:
            done.add(key)
            by_id[entry["id"]]["candidates"].append(_candidate(entry))
    meta = read_sidecar(output) if output.is_file() else {}
    generators = dict(meta.get("generators", {}))
    reports = []
    for spec in specs:
        report, identity = _run_generator(spec, settings, by_id, done, journal, (backends or {}).get(spec.name))
        reports.append(report)
        if identity is not None:
            generators[spec.name] = {**identity, "spec": f"{spec.backend}:{spec.model}",
                                     "sampling": asdict(settings.sampling)}  # fmt: skip
    write_rows(rows, output)
    write_sidecar(output, {"stage": "generate", "input": str(input), "settings": asdict(settings),
                           "generators": generators, "reports": [asdict(r) for r in reports]})  # fmt: skip
    journal.unlink(missing_ok=True)  # everything is in the output now
    return rows, reports


def journal_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".journal.jsonl")


def read_journal(path: Path) -> list[Row]:
    """Completions written by an earlier (interrupted) run; a torn last line is ignored."""
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # the line being written when the run was killed
    return entries


def _run_generator(spec, settings, by_id, done, journal: Path, backend: Backend | None):
    report = GeneratorReport(spec.name)
    sampling = settings.sampling
    requests = []
    for ident, row in by_id.items():
        for sample in range(sampling.n):
            report.requested += 1
            if (ident, spec.name, sample) in done:
                report.existing += 1
            else:
                requests.append(Request(ident, sample, prompt_of(row)))
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
                _record(completion, spec.name, report, by_id, done, sink)
                rate = f"{report.tokens / max(time.time() - started, 1e-9):,.1f} tok/s"
                bar.update(task, advance=1, rate=rate)
    finally:
        report.seconds = time.time() - started
        if owned:
            backend.close()
    return report, identity


def _record(completion: Completion, name: str, report: GeneratorReport, by_id, done, sink) -> None:
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
    done.add((request.id, name, request.sample))
    by_id[request.id]["candidates"].append(_candidate(entry))
    report.generated += 1
    report.tokens += completion.n_tokens or 0
    report.characters += len(completion.text)


def _candidate(entry: Row) -> Row:
    return {k: entry.get(k) for k in ("text", "source", "sample", "n_tokens", "finish_reason")}


def open_backend(spec: GeneratorSpec, settings: GenerateSettings) -> Backend:
    """Build the backend a generator spec names (loading its model)."""
    if spec.backend == "hf":
        from grape.generation.hf_backend import HFBackend

        return HFBackend(spec.model, settings.prompt_format, settings.batch_size, settings.dtype, settings.device,
                         settings.trust_remote_code)  # fmt: skip
    if spec.backend == "openai":
        from grape.generation.openai_backend import OpenAIBackend

        return OpenAIBackend(spec.model, spec.base_url or settings.base_url, settings.api_key_env, settings.http)
    from grape.generation.vllm_backend import VLLMBackend

    return VLLMBackend(spec.model, settings.prompt_format)


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
