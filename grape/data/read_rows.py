"""Read raw rows from any input: a file, a directory, a Hugging Face Hub dataset id, or rows in memory.

Each row comes back with its 1-based position in the input, or with the parse error that stopped it
(a malformed JSON line or a line that is not UTF-8 is not fatal here: the caller decides between
fail-fast and skip). Strings that JSON allows but Unicode does not (a lone surrogate, ``"\\ud800"``)
are found by the validation in layout.py, which knows the field.

| input | read by | row N is |
| --- | --- | --- |
| ``.jsonl``/``.ndjson``, ``.json`` of one object a line | bytes decoded line by line (below) | line N |
| ``.json`` holding one array of objects (AlpacaEval's ``model_outputs.json``) | ``json`` | element N |
| ``.parquet`` | pyarrow | record N |
| ``.csv`` | ``csv``, each record checked against the header (read_csv.py) | record N |
| a ``save_to_disk`` directory, a Hub id | ``datasets`` (read_datasets.py) | record N |
| a ``datasets.Dataset`` or a list of dicts | as given | item N |

A JSON array is parsed as one document, as ``datasets`` itself does, but each element stays the object
it was: ``load_dataset`` would give every element every key of the others (a missing ``id`` read as
``null``), which the validation would then judge wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.data.read_csv import csv_rows
from grape.data.read_datasets import dataset_object_rows, disk_dataset_rows, hub_rows, is_dataset_object
from grape.errors import GrapeError, InputError
from grape.models.hub_ids import could_be_hub_id

_JSONL = (".jsonl", ".ndjson")
_PARQUET = (".parquet", ".pq")
FILE_SUFFIXES = (*_JSONL, ".json", *_PARQUET, ".csv", ".txt")  # a missing path with one of these is a file


@dataclass
class RawRow:
    row: int  # 1-based
    data: dict[str, Any] | None
    error: str | None = None
    reason: str = "malformed_row"  # the skip reason of an unreadable row


def read_rows(
    source: Any, split: str | None = None, subset: str | None = None, revision: str | None = None
) -> Iterator[RawRow]:
    """Yield the rows of ``source``: a path (file or directory), a Hub dataset id, a ``datasets.Dataset``
    (or ``DatasetDict``), or a list of dicts. ``split``, ``subset`` (the Hub's config name) and
    ``revision`` choose what of a Hub dataset is read; ``split`` also chooses in a ``DatasetDict``."""
    if isinstance(source, list):
        yield from _list_rows(source)
        return
    if not isinstance(source, (str, Path)):
        if not is_dataset_object(source):
            raise GrapeError(
                f"cannot read {type(source).__name__} as input: give a path, a Hub dataset id, "
                "a datasets.Dataset or a list of dicts"
            )
        yield from _list_rows(dataset_object_rows(source, source_name(source), split))
        return
    path = Path(source)
    if path.is_dir():
        yield from _list_rows(disk_dataset_rows(path, split))
    elif path.exists():
        yield from _file_rows(path)
    elif looks_like_hub_id(str(source)):
        yield from _list_rows(hub_rows(str(source), split, subset, revision))
    else:
        raise InputError(str(path), None, None, "no such file or directory")


def source_name(source: Any) -> str:
    """How errors name the input: its path or Hub id, or what kind of rows in memory it is."""
    if isinstance(source, (str, Path)):
        return str(source)
    if isinstance(source, list):
        return "(list of rows)"
    return f"(datasets.{type(source).__name__})"


def looks_like_hub_id(text: str) -> bool:
    """A dataset's Hub id: the form of one (``name`` or ``owner/name``), without a data file's suffix."""
    return could_be_hub_id(text) and not text.lower().endswith(FILE_SUFFIXES)


def _file_rows(path: Path) -> Iterator[RawRow]:
    suffix = path.suffix.lower()
    if suffix in _PARQUET:
        yield from _parquet_rows(path)
    elif suffix == ".csv":
        yield from csv_rows(path)
    elif suffix == ".json" and _first_byte(path) == b"[":
        yield from _json_array_rows(path)
    elif suffix in (*_JSONL, ".json"):
        yield from _jsonl_rows(path)
    else:
        raise InputError(
            str(path), None, None, "unknown format: use .jsonl, .json, .csv, .parquet, a datasets directory or a Hub id"
        )


def _list_rows(items: Any) -> Iterator[RawRow]:
    for number, data in enumerate(items, start=1):
        if isinstance(data, dict):
            yield RawRow(number, dict(data))
        else:
            yield RawRow(number, None, f"expected an object, got {type(data).__name__}")


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


def _first_byte(path: Path) -> bytes:
    """The first byte that is not white space or a byte-order mark: ``[`` for a JSON array."""
    try:
        with path.open("rb") as handle:
            head = handle.read(4096).removeprefix(b"\xef\xbb\xbf")
    except OSError as exc:
        raise InputError(str(path), None, None, f"cannot read the file ({exc.strerror})") from exc
    return head.lstrip()[:1]


def _json_array_rows(path: Path) -> Iterator[RawRow]:
    """One JSON document: when it is not UTF-8 or not valid JSON, no element can be trusted."""
    raw = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise InputError(str(path), None, None, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line})") from exc
    try:
        items = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            str(path), None, None, f"malformed JSON array ({exc.msg} at line {exc.lineno}, column {exc.colno})"
        ) from exc
    yield from _list_rows(items)


def _parquet_rows(path: Path) -> Iterator[RawRow]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a bad file
        raise InputError(str(path), None, None, f"cannot read as Parquet ({exc})") from exc
    for number, data in enumerate(table.to_pylist(), start=1):
        yield RawRow(number, data)
