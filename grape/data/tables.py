"""Write and read the tables grape produces (Parquet by default, JSONL by extension), with a sidecar.

The sidecar ``<output>.meta.json`` holds the resolved settings, the model's identity and the package
versions, so that every output says how it was made.
"""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from grape.errors import GrapeError, InputError


def write_rows(rows: Sequence[dict[str, Any]], path: str | Path, schema: pa.Schema | None = None) -> Path:
    """Write rows to ``path``: JSONL for .jsonl/.json, Parquet otherwise. Atomic (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    if path.suffix in (".jsonl", ".json"):
        with partial.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    else:
        table = pa.Table.from_pylist(list(rows), schema=schema)
        pq.write_table(table, partial)
    os.replace(partial, path)
    return path


def read_table_rows(path: str | Path) -> list[dict[str, Any]]:
    """Read a table written by `write_rows` (either format) back as a list of dicts."""
    path = Path(path)
    if not path.is_file():
        raise InputError(str(path), None, None, "no such file")
    if path.suffix in (".jsonl", ".json"):
        rows = []
        with path.open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError as exc:
                        raise InputError(str(path), number, None, f"malformed JSON ({exc.msg})") from exc
        return rows
    try:
        return pq.read_table(path).to_pylist()
    except Exception as exc:
        raise InputError(str(path), None, None, f"cannot read as Parquet ({exc})") from exc


def sidecar_path(path: str | Path) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".meta.json")


def write_sidecar(path: str | Path, meta: dict[str, Any]) -> Path:
    target = sidecar_path(path)
    target.write_text(json.dumps({**meta, "versions": package_versions()}, indent=2, default=str) + "\n")
    return target


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
    for name in ("grape", "torch", "transformers", "trl", "peft", "datasets", "pyarrow"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            pass
    return out
