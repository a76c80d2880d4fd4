"""Stage keys and stage state: what makes a pipeline re-run only what changed, and resume what was cut.

A stage's key is a hash of its name, its resolved settings and the fingerprints of its inputs. Data
files are fingerprinted by content; an earlier stage's output by the content hash recorded when it
was written; a model directory named by path by its files' sizes and times (hashing gigabytes of
weights on every run would cost more than the re-run it might save).

In each stage's folder, ``stage.started.json`` holds the key being run and ``stage.json`` (written
last) the key that finished. A folder whose started key differs from the new key is wiped first; one
whose started key is the same is left alone, so that the stage resumes (sft from its checkpoints,
score from its parts, generate from its journal).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

from grape import __version__

STATE, STARTED = "stage.json", "stage.started.json"
SKIPPED_IN_HASH = ("checkpoints",)  # sft's resumable state is not part of the model it produced


def content_hash(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a directory's (relative path, file hash) list."""
    path = Path(path)
    if path.is_file():
        return _file_hash(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        relative = file.relative_to(path)
        if relative.parts[0] in SKIPPED_IN_HASH:
            continue
        digest.update(f"{relative.as_posix()}\0{_file_hash(file)}\n".encode())
    return digest.hexdigest()


def stage_key(stage: str, settings: dict[str, Any], fingerprints: dict[str, str]) -> str:
    payload = {"stage": stage, "grape": __version__, "settings": settings, "inputs": fingerprints}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_state(folder: Path) -> dict[str, Any] | None:
    return _read(folder / STATE)


def is_cached(folder: Path, key: str, output: Path) -> bool:
    state = finished_state(folder)
    return state is not None and state.get("key") == key and output.exists()


def begin(folder: Path, key: str) -> bool:
    """Prepare the folder for running ``key``; return True when an interrupted run of the same key is resumed."""
    started = _read(folder / STARTED)
    resuming = started is not None and started.get("key") == key and finished_state(folder) is None
    if not resuming and folder.exists():
        shutil.rmtree(folder)  # stale: other settings or inputs, or a finished run being redone
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / STARTED, {"key": key, "started_at": time.time()})
    return resuming


def finish(folder: Path, record: dict[str, Any]) -> None:
    _write(folder / STATE, {**record, "finished_at": time.time()})


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # absent, or torn by a kill mid-write: treated as not there


def _write(path: Path, data: dict[str, Any]) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(partial, path)
