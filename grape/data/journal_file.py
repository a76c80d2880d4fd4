"""An append-only JSONL journal: one JSON line per finished piece of work, flushed as it comes, so that a killed
run loses at most the piece in flight (`grape eval`'s answers, `grape itool mcts`'s questions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
