"""Read raw rows from JSONL, Parquet or a local Hugging Face dataset directory.

Each row comes back with its 1-based position in the file, or with the parse error that stopped it
(a malformed JSON line or a line that is not UTF-8 is not fatal here: the caller decides between
fail-fast and skip). Strings that JSON allows but Unicode does not (a lone surrogate, ``"\\ud800"``)
are found by the validation in layout.py, which knows the field.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.errors import InputError


@dataclass
class RawRow:
    row: int  # 1-based
    data: dict[str, Any] | None
    error: str | None = None
    reason: str = "malformed_row"  # the skip reason of an unreadable row


def read_rows(path: str | Path, split: str | None = None) -> Iterator[RawRow]:
    """Yield the rows of a JSONL (.jsonl/.json), Parquet or `datasets.save_to_disk` input."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), None, None, "no such file or directory")
    if path.is_dir():
        yield from _dataset_rows(path, split)
    elif path.suffix in (".parquet", ".pq"):
        yield from _parquet_rows(path)
    elif path.suffix in (".jsonl", ".json", ".ndjson"):
        yield from _jsonl_rows(path)
    else:
        raise InputError(str(path), None, None, "unknown format: use .jsonl, .parquet or a datasets directory")


def jsonl_lines(path: Path) -> Iterator[tuple[int, str | None, str | None]]:
    """Yield (1-based line number, text, None) for each non-blank line, or (number, None, why) for a line
    that is not UTF-8. The file is read as bytes and decoded line by line, so one bad byte costs one row."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise InputError(str(path), None, None, f"cannot read the file ({exc.strerror})") from exc
    with handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1:
                raw = raw.removeprefix(b"\xef\xbb\xbf")  # a byte-order mark some editors write
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                yield number, None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the line)"
                continue
            if text.strip():
                yield number, text, None


def _jsonl_rows(path: Path) -> Iterator[RawRow]:
    for number, line, error in jsonl_lines(path):
        if line is None:
            yield RawRow(number, None, error, "invalid_utf8")
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield RawRow(number, None, f"malformed JSON ({exc.msg} at column {exc.colno})")
            continue
        if not isinstance(data, dict):
            yield RawRow(number, None, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield RawRow(number, data)


def _parquet_rows(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(str(path), None, None, f"cannot read as Parquet ({exc})") from exc
    for number, data in enumerate(table.to_pylist(), start=1):
        yield RawRow(number, data)


def _dataset_rows(path: Path, split: str | None) -> Iterator[RawRow]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise InputError(str(path), None, None, f"not a datasets directory saved by save_to_disk ({exc})") from exc
    if isinstance(loaded, datasets.DatasetDict):
        names = list(loaded)
        if split is None and len(names) != 1:
            raise InputError(str(path), None, None, f"several splits {names}: choose one with --split")
        name = split or names[0]
        if name not in loaded:
            raise InputError(str(path), None, None, f"no split '{name}' (have {names})")
        loaded = loaded[name]
    for number, data in enumerate(loaded, start=1):
        yield RawRow(number, dict(data))
