"""An append-only JSONL journal: one JSON line per finished piece of work, flushed as it comes, so that a killed
run loses at most the piece in flight (`grape generate`'s completions, `grape eval`'s answers, `grape itool
mcts`'s searches), and its reading back, which passes over the torn line a killed run was writing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_journal(path: Path | None) -> list[dict[str, Any]]:
    """The entries of the journal at ``path`` in the order written (none when it is absent); a line that is not
    whole JSON (the one being written when the run was killed) is passed over."""
    if path is None or not path.is_file():
        return []
    entries = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict):
            entries.append(entry)
    return entries


class JournalFile:
    """Appends entries to ``path`` (nothing when ``path`` is None); use as a context manager."""

    def __init__(self, path: Path | None):
        self.path = path
        self._file = None

    def __enter__(self) -> JournalFile:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = self.path.open("a", encoding="utf-8")
        return self

    def append(self, entry: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._file.flush()

    def __exit__(self, *exc: Any) -> None:
        if self._file is not None:
            self._file.close()
