"""The parts directory: scoring results saved piece by piece, so that a killed run loses little.

Layout: ``<output>.parts/<settings-key>/part-<chunk>-<digest>.parquet``, one file per chunk of
instructions, each holding every scored candidate of those instructions. A part is written to a
temporary name, flushed to disk and renamed, so it is either whole or absent; what is done is read from
the parts themselves (there is no separate index that could disagree with them). A part's name depends
on its content, so a retried chunk replaces its own part and never another one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from grape.console import console
from grape.data.tables import write_atomically
from grape.errors import file_system_error

PART_SCHEMA = pa.schema([
    ("key", pa.string()), ("id", pa.string()), ("candidate", pa.int64()), ("n_tokens", pa.int64()),
    ("sum_logprob", pa.float64()), ("status", pa.string()),
    ("detail", pa.string()),  # why a candidate was skipped while rendering (too long, bad prompt)
    ("worker", pa.string()),  # host:pid that scored it, to trace a suspicious score to its machine
])  # fmt: skip


@dataclass(frozen=True)
class CandidateResult:
    status: str
    n_tokens: int | None
    sum_logprob: float | None
    detail: str | None


def parts_root(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".parts")


def part_name(chunk: int, keys: Iterable[str]) -> str:
    """The file name of a chunk's part: its index (for order) and a digest of the instructions in it."""
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:10]
    return f"part-{chunk:05d}-{digest}.parquet"


def saved_keys(directory: str | Path) -> tuple[set[str], int]:
    """The instructions that have a part in ``directory``, and how many parts cannot be read; read only
    (nothing is created or removed, unlike `PartsStore`, which a run holds under the output's lock)."""
    done: set[str] = set()
    unreadable = 0
    for path in sorted(Path(directory).glob("part-*.parquet")):
        try:
            done.update(pq.read_table(path, columns=["key"]).column("key").to_pylist())
        except Exception:  # the run will warn about it and redo its instructions
            unreadable += 1
    return done, unreadable


class PartsStore:
    """The parts of one settings key: write them atomically, list what is done, read them back."""

    def __init__(self, directory: str | Path):
        """Open (create) the folder. The caller holds the output's lock (see grape.data.output_lock), so
        that temporary files found here are a killed run's leftovers: they are never read; remove them."""
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            for stale in self.directory.glob(".*.tmp"):
                stale.unlink(missing_ok=True)
        except OSError as exc:
            raise file_system_error(self.directory, exc) from exc

    def describe(self, settings: dict[str, Any]) -> None:
        """Write settings.json once: what the key of this directory stands for (for people, not for resume)."""
        target = self.directory / "settings.json"
        if not target.is_file():
            text = json.dumps(settings, indent=2) + "\n"
            write_atomically(target, lambda handle: handle.write(text.encode()))

    def write(self, name: str, table: pa.Table) -> Path:
        """Save a part: whole or absent, even when the run is killed while writing it."""
        table = table.cast(PART_SCHEMA)
        return write_atomically(self.directory / name, lambda handle: pq.write_table(table, handle))

    def part_paths(self) -> list[Path]:
        return sorted(self.directory.glob("part-*.parquet"))

    def done_keys(self) -> set[str]:
        """The instructions that have a part (read from the parts' key column only)."""
        done: set[str] = set()
        for table in self._read(["key"]):
            done.update(table.column("key").to_pylist())
        return done

    def outcomes(self) -> dict[tuple[str, int], CandidateResult]:
        """Every saved (instruction key, candidate) -> outcome. A candidate saved twice (a retried chunk
        whose first attempt was saved too) is taken once, from the first part in name order."""
        found: dict[tuple[str, int], CandidateResult] = {}
        for table in self._read(["key", "candidate", "status", "n_tokens", "sum_logprob", "detail"]):
            columns = [table.column(name).to_pylist() for name in table.column_names]
            for key, candidate, status, n_tokens, total, detail in zip(*columns, strict=True):
                found.setdefault((key, candidate), CandidateResult(status, n_tokens, total, detail))
        return found

    def _read(self, columns: list[str]) -> Iterable[pa.Table]:
        for path in self.part_paths():
            try:
                table = pq.read_table(path, columns=columns)
            except Exception as exc:  # a part damaged outside grape (disk full, a crash without fsync)
                console.print(f"[yellow]warning:[/] ignoring the unreadable part {path.name} ({exc}); redoing it")
                path.unlink(missing_ok=True)
                continue
            yield table
