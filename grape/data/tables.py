"""Write and read the tables grape produces (Parquet by default, JSONL by extension), with a sidecar.

The sidecar ``<output>.meta.json`` holds the resolved settings, the model's identity and the package
versions, so that every output says how it was made.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import platform
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from grape.data.read_rows import jsonl_lines
from grape.errors import GrapeError, InputError, file_system_error

_TEMPORARY = ".tmp"  # the suffix of a file being written (see write_atomically)
_JSON_LINES = (".jsonl", ".json")  # one JSON object a line
TABLE_SUFFIXES = (*_JSON_LINES, ".parquet")  # the tables grape writes, by the output's suffix


def table_suffix_problem(path: str | Path) -> str | None:
    """Why grape cannot write a table named ``path`` (its suffix names no format it writes), else None."""
    suffix = Path(path).suffix
    if suffix.lower() in TABLE_SUFFIXES:
        return None
    named = f"a {suffix} file" if suffix else "a file without a suffix"
    return f"cannot write a table as {named}: name it .jsonl, .json or .parquet"


def check_table_output(path: str | Path) -> None:
    """Refuse, in one line, an output whose suffix names no table format (before any work is done)."""
    problem = table_suffix_problem(path)
    if problem:
        raise GrapeError(f"{path}: {problem}")


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path, schema: pa.Schema | None = None) -> Path:
    """Write rows to ``path``: JSONL for .jsonl/.json, Parquet for .parquet, atomically (see `write_atomically`).
    Any other suffix is refused: Parquet under a .csv name would be unreadable by what the name promises."""
    path = Path(path)
    check_table_output(path)
    if path.suffix.lower() in _JSON_LINES:

        def write(handle: BinaryIO) -> None:
            for row in rows:
                handle.write((json.dumps(row, ensure_ascii=False) + "\n").encode("utf-8"))

        return write_atomically(path, write)
    try:
        table = pa.Table.from_pylist(list(rows), schema=schema)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:  # e.g. a skipped row's text 7 beside strings
        reason = str(exc).splitlines()[0]
        raise GrapeError(f"{path}: cannot write as Parquet ({reason}): a column holds values of different types; "
                         "write .jsonl, which keeps each value as it is") from exc  # fmt: skip
    return write_atomically(path, lambda handle: pq.write_table(table, handle))


def write_atomically(target: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    """Create ``target`` with ``write(handle)``: into a temporary file of this call's own in the same
    folder, flushed to disk, then renamed over ``target``. A reader sees the old file or the new one,
    never a part of one; two writers never share a temporary file (the last rename wins). A file system
    error (full disk, read-only, a file where a folder should be) becomes a one-line GrapeError."""
    target = Path(target)
    temporary = target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}{_TEMPORARY}")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())  # the rename must not be seen before the data it names
        os.replace(temporary, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            temporary.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise file_system_error(target, exc) from exc
        raise
    return target


def remove_temporaries(target: str | Path) -> None:
    """Remove the temporary files that writers of ``target`` killed mid-write left behind (and of its
    sidecar). Only for a caller that holds the output's lock: another writer's file would go too."""
    target = Path(target)
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*{_TEMPORARY}"):
        with contextlib.suppress(OSError):
            leftover.unlink()


def read_table_rows(source: Any) -> list[dict[str, Any]]:
    """The rows of a table written by `write_rows` (either format) as a list of dicts; rows already in memory
    (a list of dicts, or a ``datasets.Dataset``) are taken as they are."""
    if isinstance(source, list):
        return source
    if table_file(source) is None and hasattr(source, "to_list"):  # a datasets.Dataset
        return source.to_list()
    path = Path(source)
    if not path.is_file():
        raise InputError(str(path), None, None, "no such file")
    if path.suffix.lower() in _JSON_LINES:
        rows = []
        for number, line, error in jsonl_lines(path):
            if line is None:
                raise InputError(str(path), number, None, error or "unreadable line")
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(str(path), number, None, f"malformed JSON ({exc.msg})") from exc
        return rows
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:
        raise InputError(str(path), None, None, f"cannot read as Parquet ({exc})") from exc


def table_file(source: Any) -> Path | None:
    """The file a stage's input was read from (None for rows given in memory: a list or a datasets.Dataset)."""
    return Path(source) if isinstance(source, (str, Path)) else None


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def write_sidecar(path: str | Path, meta: dict[str, Any]) -> Path:
    text = json.dumps({**meta, "versions": package_versions()}, indent=2, default=str) + "\n"
    return write_atomically(sidecar_path(path), lambda handle: handle.write(text.encode("utf-8")))


def read_sidecar(path: str | Path) -> dict[str, Any]:
    target = sidecar_path(path)
    if not target.is_file():
        return {}
    try:
        return json.loads(target.read_text())
    except json.JSONDecodeError as exc:
        raise GrapeError(f"{target}: malformed sidecar ({exc.msg})") from exc


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("grape-fit", "torch", "transformers", "trl", "peft", "datasets", "pyarrow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
