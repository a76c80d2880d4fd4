"""A resumable scoring job: find what is left, save each scored chunk as a part, assemble the table.

The single-process scorer and the Ray job both run as a `ScoreJob`; they differ only in who scores
the pending chunks. Chunks have fixed boundaries (consecutive instructions of the input, ``part_size``
each), so a resumed run scores the very chunks the killed run had left, batched as before.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from grape.console import console
from grape.data.layout import load_instructions
from grape.data.output_lock import OutputLock
from grape.data.read_rows import source_name
from grape.data.records import Instruction
from grape.data.tables import check_table_output, remove_temporaries, write_rows, write_sidecar
from grape.errors import GrapeError, InputError
from grape.scoring.assemble import SCORES_SCHEMA, raise_first_problem, scores_rows, status_counts
from grape.scoring.chunk_scorer import WorkItem
from grape.scoring.keys import instruction_key, settings_key
from grape.scoring.parts import CandidateResult, PartsStore, part_name, parts_root
from grape.scoring.settings import ScoreSettings


@dataclass
class Chunk:
    index: int
    items: list[WorkItem]

    @property
    def name(self) -> str:
        return part_name(self.index, [item.key for item in self.items])

    @property
    def n_candidates(self) -> int:
        return sum(len(item.candidates) for item in self.items)


class ScoreJob:
    """Open with the input and settings; score ``pending`` chunks and `record` each; then `finish`."""

    def __init__(
        self,
        input: str | Path,
        output: str | Path | None,
        settings: ScoreSettings,
        model_and_dtype: Callable[[], tuple[str, str]],
    ):
        """``model_and_dtype()`` gives the model fingerprint and dtype name for the settings key; it is
        called after the input is read, so that a mistake in the input is reported before model work."""
        if settings.part_size < 1:
            raise GrapeError(f"part size must be at least 1 instruction, not {settings.part_size}")
        self._lock: OutputLock | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None
        try:
            self._open(input, output, settings, model_and_dtype)
        except BaseException:
            self.close()
            raise

    def _open(
        self,
        input: str | Path,
        output: str | Path | None,
        settings: ScoreSettings,
        model_and_dtype: Callable[[], tuple[str, str]],
    ) -> None:
        self.started = time.time()
        self.input, self.output, self.settings = input, output, settings
        if output is not None:
            check_table_output(output)  # before any work: an API caller's x.csv would fail only at the end
        self.instructions, self.n_input = read_instructions(input, settings)
        # One run per output, from here to its last write: a second run stops here, naming the first.
        if output is not None:
            self._lock = OutputLock(output)
            remove_temporaries(output)  # of a run killed while it wrote the table
        self.keys = [instruction_key(i) if scorable(i) else None for i in self.instructions]
        model, dtype = model_and_dtype()
        self.key, self.described = settings_key(model, settings.template, settings.eos, dtype)
        # Without an output there is nothing to resume: the parts live in a directory removed at close.
        self._scratch = tempfile.TemporaryDirectory(prefix="grape-parts-") if output is None else None
        root = Path(self._scratch.name) if self._scratch else parts_root(output)
        self.store = PartsStore(root / self.key)
        self.store.describe(self.described)
        done = self.store.done_keys()
        live = [(inst, key) for inst, key in zip(self.instructions, self.keys, strict=True) if key is not None]
        self.pending = pending_chunks(live, done, settings.part_size)
        self.n_instructions = len({key for _, key in live})
        self.n_reused = len({key for _, key in live} & done)
        self.total_candidates = sum(sum(c.skip_reason is None for c in inst.candidates) for inst, _ in live)
        self.done_candidates = self.total_candidates - sum(chunk.n_candidates for chunk in self.pending)
        self._by_key = {key: inst for inst, key in live}
        if self.n_reused and output is not None:
            console.print(
                f"Resuming: {self.n_reused} of {self.n_instructions} instructions already scored "
                f"(parts in {self.store.directory})"
            )

    def record(self, chunk: Chunk, table: pa.Table) -> None:
        """Save a scored chunk as a part; in fail-fast mode, then stop at its first unscorable candidate."""
        self.store.write(chunk.name, table)
        if self.settings.on_error == "fail":
            for key, candidate, status, detail in zip(*(table.column(c).to_pylist() for c in _CHECKED), strict=True):
                raise_first_problem(self._by_key[key], candidate, CandidateResult(status, None, None, detail))

    def finish(self, identity: dict[str, Any], extra: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Assemble the scores table from all parts (in input order), write it with its sidecar, return it."""
        outcomes = self.store.outcomes()
        missing = {
            key for inst, key in zip(self.instructions, self.keys, strict=True) if key is not None
            for k, cand in enumerate(inst.candidates) if cand.skip_reason is None and (key, k) not in outcomes
        }  # fmt: skip
        if missing:
            raise GrapeError(
                f"{len(missing)} instructions have no saved scores in {self.store.directory} (were parts removed "
                "while the job ran?): run the same command again to score them"
            )
        if self.settings.on_error == "fail":
            for inst, key in zip(self.instructions, self.keys, strict=True):
                for k, cand in enumerate(inst.candidates):
                    if key is not None and cand.skip_reason is None:
                        raise_first_problem(inst, k, outcomes[key, k])
        rows = scores_rows(self.instructions, self.keys, outcomes)
        if self.output is not None:
            write_rows(rows, self.output, SCORES_SCHEMA)
            write_sidecar(self.output, {
                "stage": "score", "input": source_name(self.input), "settings": asdict(self.settings),
                "model": identity,
                "counts": status_counts(rows), "seconds": round(time.time() - self.started, 2),
                **self._limit_note(),
                "parts": {"directory": str(self.store.directory), "settings_key": self.key,
                          "instructions": self.n_instructions, "reused": self.n_reused},
                **(extra or {}),
            })  # fmt: skip
        return rows

    def _limit_note(self) -> dict[str, Any]:
        """With a limit, how many instructions of the input were left out: the sidecar accounts for them."""
        if self.settings.limit is None:
            return {}
        kept = len(self.instructions)
        return {"limit": {"instructions": kept, "of": self.n_input, "left_out": self.n_input - kept}}

    def close(self) -> None:
        """Remove the scratch parts (without an output) and let go of the output's lock."""
        if self._scratch is not None:
            self._scratch.cleanup()
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def __enter__(self) -> ScoreJob:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_CHECKED = ("key", "candidate", "status", "detail")


def read_instructions(input: str | Path, settings: ScoreSettings) -> tuple[list[Instruction], int]:
    """The input's instructions (the first ``settings.limit`` of them, when set) and how many it holds in all.
    The whole input is read and checked either way, so a trial run with a limit meets its mistakes too."""
    s = settings
    if s.limit is not None and s.limit < 1:
        raise GrapeError(f"limit must be at least 1 instruction, not {s.limit}")
    instructions = load_instructions(input, s.columns, s.layout, s.on_error, s.split, subset=s.subset,
                                     revision=s.revision)  # fmt: skip
    if not instructions:  # an empty table written here could replace an earlier run's output
        raise InputError(source_name(input), None, None, "no rows: nothing to score")
    return instructions[: s.limit], len(instructions)


def scorable(inst: Instruction) -> bool:
    return not inst.skip_reason and any(c.skip_reason is None for c in inst.candidates)


def pending_chunks(live: list[tuple[Instruction, str]], done: set[str], part_size: int) -> list[Chunk]:
    """Chunks of ``part_size`` consecutive scorable instructions, less those already done."""
    chunks, seen = [], set(done)
    for start in range(0, len(live), part_size):
        items = []
        for inst, key in live[start : start + part_size]:
            if key not in seen:  # an identical instruction twice is scored once
                seen.add(key)
                items.append(work_item(inst, key))
        if items:
            chunks.append(Chunk(start // part_size, items))
    return chunks


def work_item(inst: Instruction, key: str) -> WorkItem:
    """What the scorer gets of an instruction: its prompt and its valid candidates (with their indices)."""
    candidates = [(k, c.text) for k, c in enumerate(inst.candidates) if c.skip_reason is None]
    return WorkItem(key, inst.id, inst.prompt, candidates)
