"""Step folders and their state: what makes a pipeline re-run only what changed, resume what was cut, and
never touch a folder it did not make.

Each step folder grape creates holds ``.grape-step`` (the marker: which step and key it was begun for,
written before anything else) and, once the step finished, ``stage.json`` (its key, settings, input
fingerprints, and the output's size and content hash). A folder whose marker holds another key is
wiped first, but for what its stage keeps (score's parts, keyed by all that changes a score: a rerun under
other settings re-scores only the instructions whose score can have changed); one with the same key and no
``stage.json`` is left alone, so that the step resumes (sft from its checkpoints, score from its parts, generate
from its journal). A folder without a marker is
not grape's: grape refuses to reuse or clear it (an older grape's ``stage.started.json`` counts as a
marker; an empty folder holds nothing to lose and is taken).

A finished step counts as cached only while its output still has the size and content hash recorded
when it finished: a truncated or edited output reruns. Hashing costs ~1 s per GB on this CPU (sha256,
1.1 GB/s measured), small beside what recomputing a step costs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

from grape.data.tables import write_atomically
from grape.errors import GrapeError

MARKER, STATE = ".grape-step", "stage.json"
OLD_MARKER = "stage.started.json"  # what grape before the marker wrote first into a stage folder
SKIPPED_IN_HASH = ("checkpoints",)  # sft's resumable state is not part of the model it produced


def content_hash(path: str | Path) -> str:
    """sha256 of a file's bytes, or of a directory's (relative path, file hash) list."""
    path = Path(path)
    if path.is_file():
        return _file_hash(path)
    digest = hashlib.sha256()
    for file in _files(path):
        digest.update(f"{file.relative_to(path).as_posix()}\0{_file_hash(file)}\n".encode())
    return digest.hexdigest()


def content_size(path: str | Path) -> int:
    """Bytes of a file, or of the files of a directory that `content_hash` reads."""
    path = Path(path)
    return path.stat().st_size if path.is_file() else sum(f.stat().st_size for f in _files(path))


def is_grape_folder(folder: Path) -> bool:
    """True when grape may use and clear ``folder``: absent, empty, or marked as a grape step folder."""
    if not folder.exists():
        return True
    if not folder.is_dir():
        return False
    return (folder / MARKER).is_file() or (folder / OLD_MARKER).is_file() or not any(folder.iterdir())


def foreign_folder_message(folder: Path) -> str:
    return (f"{folder} exists and was not made by grape (no {MARKER} marker); grape will not reuse or delete it: "
            f"move it away or choose another workdir")  # fmt: skip


def marker(folder: Path) -> dict[str, Any] | None:
    return _read(folder / MARKER) or _read(folder / OLD_MARKER)


def finished_state(folder: Path) -> dict[str, Any] | None:
    return _read(folder / STATE)


def output_problem(state: dict[str, Any], output: Path) -> str | None:
    """Why a finished step's output cannot be passed on as it is, or None when it is as recorded."""
    if not output.exists():
        return "its output is missing"
    size = content_size(output)
    if state.get("output_size") is not None and size != state["output_size"]:
        return f"its output changed since it was written ({size} bytes, was {state['output_size']})"
    if content_hash(output) != state.get("output_hash"):
        return "its output changed since it was written (other content)"
    return None


def begin(folder: Path, step: str, kind: str, key: str, kept: tuple[str, ...] = ()) -> bool:
    """Prepare the folder for running ``key``; return True when an interrupted run of the same key is resumed.
    Otherwise the folder is cleared but for ``kept`` (stores keyed by what changes their content)."""
    if not is_grape_folder(folder):
        raise GrapeError(foreign_folder_message(folder))
    started = marker(folder)
    resuming = started is not None and started.get("key") == key and finished_state(folder) is None
    if not resuming and folder.exists():  # grape's own: other settings or inputs, or a finished run being redone
        for path in folder.iterdir():
            if path.name in kept and path.is_dir():
                continue
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder / MARKER, {"made_by": "grape run", "step": step, "type": kind, "key": key,
                             "started_at": time.time()})  # fmt: skip
    return resuming


def finish(folder: Path, record: dict[str, Any]) -> None:
    _write(folder / STATE, {**record, "finished_at": time.time()})


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.relative_to(folder).parts[0] not in SKIPPED_IN_HASH)


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # absent, or torn by a kill mid-write: treated as not there
    return data if isinstance(data, dict) else None


def _write(path: Path, data: dict[str, Any]) -> None:
    write_atomically(path, lambda h: h.write((json.dumps(data, indent=2, default=str) + "\n").encode()))
