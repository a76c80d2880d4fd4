"""What a generate run works on, read before any model is loaded (the run and its dry run share it).

- The generators the settings name, checked: names, templates, sampling (`generator_specs`).
- The rows: the input's, or its first ``limit``; an output that already exists holds the first rows of
  the input with their candidates, and is extended (a ``--limit 10`` trial, then the whole run, fill one
  file) or resumed. Rows past the limit that an earlier run wrote stay in the output.
- What is done: every (instruction, generator, sample) in the output or in the journal that an
  interrupted run left (``<output>.journal.jsonl``, one completion a line; a torn last line is ignored).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from grape.data.journal_file import read_journal
from grape.data.pool import SKIP_KEY, Row, item_of, prompt_of, read_pool
from grape.data.tables import read_sidecar, write_atomically
from grape.errors import GrapeError
from grape.generation.backend import GeneratorSpec, Request
from grape.generation.prompts import resolve_format
from grape.generation.reference import REFERENCE_SOURCE
from grape.generation.settings import GenerateSettings

Key = tuple[str, Any, Any]  # (instruction id, source, sample)
CANDIDATE_KEYS = ("text", "source", "sample", "n_tokens", "finish_reason")


@dataclass
class Work:
    rows: list[Row]  # the output's rows, in input order
    todo: dict[str, Row]  # the rows generated for: the first `limit` of the input (readable ones), by id
    done: set[Key]  # already in the output or the journal
    leftover: list[Row]  # journal entries of rows this output does not hold (kept in the journal)
    meta: dict[str, Any]  # the output's sidecar, if it exists
    input_rows: int  # rows in the input, before the limit


def generator_specs(settings: GenerateSettings) -> list[GeneratorSpec]:
    """The generators ``settings.models`` names, checked without loading a model (the pipeline check too)."""
    specs = [GeneratorSpec.parse(m) for m in settings.models]
    if not specs and not settings.reference_field:
        raise GrapeError("no generator: pass at least one --model (or --reference-field alone)")
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise GrapeError(f"two generators share a name in {names}: name them, e.g. --model small=hf:MODEL")
    if settings.reference_field and REFERENCE_SOURCE in names:
        raise GrapeError(f"a generator is named '{REFERENCE_SOURCE}', the source of the reference_field candidates")
    if settings.limit is not None and settings.limit < 1:
        raise GrapeError("--limit must be at least 1")
    resolve_format(settings.prompt_format, None)  # an unknown name or a missing file, before any model loads
    for spec in specs:
        if spec.sampling_over(settings.sampling).n < 1:
            raise GrapeError(f"{spec.name}: -n must be at least 1")
        if spec.template is None:
            continue
        try:
            resolve_format(spec.template, None)
        except GrapeError as exc:
            raise GrapeError(f"generator {spec.name}: {exc}") from None
        if spec.backend == "openai" and spec.template not in ("auto", "chat") and not Path(spec.template).is_file():
            raise GrapeError(f"generator {spec.name}: an openai server applies its own chat template; give it a "
                             f".jinja file (the user message) or none, not '{spec.template}'")  # fmt: skip
    return specs


def prepare(input: Any, output: str | Path, settings: GenerateSettings) -> Work:
    """Read the input, the output already there and the journal; nothing is written."""
    output = Path(output)
    fresh = read_pool(input, settings.columns, settings.layout, settings.on_error, settings.split,
                      settings.subset, settings.revision)  # fmt: skip
    wanted = len(fresh) if settings.limit is None else min(settings.limit, len(fresh))
    rows = fresh[:wanted]
    if output.is_file():
        rows = _extend(read_pool(output, on_error="skip", allow_empty=True), fresh, wanted, str(output))
    readable = {r["id"]: r for r in rows if not r.get(SKIP_KEY)}
    todo = {r["id"]: r for r in rows[:wanted] if not r.get(SKIP_KEY)}
    done = {(i, c.get("source"), c.get("sample")) for i, r in readable.items() for c in r["candidates"]}
    leftover = []
    for entry in read_journal(journal_path(output)):
        key = (entry["id"], entry["source"], entry["sample"])
        if entry["id"] not in readable:
            leftover.append(entry)
        elif key not in done:
            done.add(key)
            readable[entry["id"]]["candidates"].append(candidate_of(entry))
    meta = read_sidecar(output) if output.is_file() else {}
    for spec in generator_specs(settings):
        check_same_generator(meta.get("generators", {}).get(spec.name), made_with(spec, settings), spec.name, output)
    return Work(rows, todo, done, leftover, meta, len(fresh))


_FREE = ("n", "seed")  # more samples, or another seed: draws from the same distribution


def made_with(spec: GeneratorSpec, settings: GenerateSettings) -> dict[str, Any]:
    """What a generator's samples are drawn from, as the output's sidecar records it: model, template, sampling."""
    return {"spec": f"{spec.backend}:{spec.model}", "template": spec.template or settings.prompt_format,
            "sampling": asdict(spec.sampling_over(settings.sampling))}  # fmt: skip


def check_same_generator(record: dict[str, Any] | None, asked: dict[str, Any], name: str, output: Path) -> None:
    """Refuse to add to an output samples of a generator name drawn otherwise than the ones it holds (another
    model, template, temperature, length...): they would pass as one source."""
    if not record:
        return

    def drawn(made: dict[str, Any]) -> dict[str, Any]:
        sampling = {k: v for k, v in (made.get("sampling") or {}).items() if k not in _FREE}
        return {"model": made.get("spec"), "template": made.get("template"), **sampling}

    before, now = drawn(record), drawn(asked)
    if record.get("template") is None:  # written before the template was recorded
        before.pop("template")
        now.pop("template")
    changed = [f"{key} {before.get(key)!r}, now {value!r}" for key, value in now.items() if before.get(key) != value]
    if changed:
        raise GrapeError(
            f"{output}: generator '{name}' made its samples here with other settings ({'; '.join(changed)}): "
            "give it another name (--model NAME=...), or write to another -o"
        )


def pending(work: Work, name: str, n: int) -> tuple[list[Request], int]:
    """(the requests generator ``name`` still has to answer, how many of its n samples per row are there)."""
    requests, existing = [], 0
    for ident, row in work.todo.items():
        for sample in range(n):
            if (ident, name, sample) in work.done:
                existing += 1
            else:
                requests.append(Request(ident, sample, prompt_of(row), item_of(row)))
    return requests, existing


def row_counts(work: Work) -> dict[str, int]:
    """Every input row accounted for: in the output, generated for, unreadable, or past the limit."""
    unreadable = sum(1 for r in work.rows if r.get(SKIP_KEY))
    return {"input": work.input_rows, "output": len(work.rows), "generated_for": len(work.todo),
            "unreadable": unreadable, "past_limit": work.input_rows - len(work.rows)}  # fmt: skip


def _extend(existing: list[Row], fresh: list[Row], wanted: int, where: str) -> list[Row]:
    """The output's rows, followed by the input's next rows up to ``wanted``."""
    if [r["id"] for r in fresh[: len(existing)]] != [r["id"] for r in existing]:
        raise GrapeError(
            f"{where} exists but holds other instructions than the input (its {len(existing)} rows are not the "
            "input's first ones): delete it, or write to another -o"
        )
    return existing + fresh[len(existing) : wanted]


def journal_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".journal.jsonl")


def close_journal(path: Path, leftover: list[Row]) -> None:
    """Everything placed is in the output now: remove the journal, or keep only what no row here took."""
    if not leftover:
        path.unlink(missing_ok=True)
        return
    lines = "".join(json.dumps(entry, ensure_ascii=False) + "\n" for entry in leftover)
    write_atomically(path, lambda handle: handle.write(lines.encode("utf-8")))


def candidate_of(entry: Row) -> Row:
    return {k: entry.get(k) for k in CANDIDATE_KEYS}
