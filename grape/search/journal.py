"""The questions `grape itool mcts` has already searched, so that a killed search resumes where it stopped.

A search costs minutes per question on a CPU (simulations × sampled continuations), and a run over 60
questions can outlast a session. While it runs, each question's outcome (its pair rows, or why it has none,
and the pairs left out with their reasons) goes to ``<output>.searched.jsonl``, one JSON line per question,
flushed. A re-run with the same key takes those questions as they are and searches the rest; the output is
the same as an uninterrupted run's, because each question's sampling starts from its own seed (its id and
the run's seed), not from where the previous question left the generator. The key covers what shapes a
question's outcome: the model (every tensor, `loaded_fingerprint`) and every setting but dtype and device
(which change rounding only); each question is matched by its id and its row. A torn last line, or a line
under another key, is ignored. The journal is removed once the output is written.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grape.data.journal_file import JournalFile
from grape.models.fingerprint import loaded_fingerprint
from grape.models.load import LoadedModel
from grape.search.settings import MCTSSettings

JOURNAL_VERSION = 1  # bump when what a question's outcome holds changes, so that older lines are not reused
Outcome = dict[str, Any]  # {"pairs": [row], "without": {reason: count} | None, "left_out": [reason], "calls": int}


def search_key(loaded: LoadedModel, settings: MCTSSettings) -> str:
    """A 16-hex key of the model and the settings that shape a search's outcome."""
    shaping = {k: v for k, v in asdict(settings).items() if k not in ("dtype", "device", "model")}
    described = {"version": JOURNAL_VERSION, "model": loaded_fingerprint(loaded), "settings": shaping}
    return _digest(json.dumps(described, sort_keys=True, default=str).encode())[:16]


def question_key(ident: str, row: dict[str, Any]) -> str:
    """A question's key: its id and its whole row (an edited row is searched again)."""
    return _digest(json.dumps([ident, row], ensure_ascii=False, sort_keys=True, default=str).encode())[:24]


def journal_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".searched.jsonl")


def searched(output: str | Path | None, key: str) -> dict[str, Outcome]:
    """The outcomes already journalled under ``key`` for ``output``, by question key."""
    path = journal_path(output) if output is not None else None
    found: dict[str, Outcome] = {}
    if path is None or not path.is_file():
        return found
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue  # the line a killed run was writing
        if isinstance(entry, dict) and entry.get("key") == key and isinstance(entry.get("outcome"), dict):
            found[entry["question"]] = entry["outcome"]
    return found


class SearchJournal(JournalFile):
    """Appends each question's outcome to ``<output>.searched.jsonl`` as it is found (nothing without output)."""

    def __init__(self, output: str | Path | None, key: str):
        super().__init__(journal_path(output) if output is not None else None)
        self.key = key

    def record(self, question: str, outcome: Outcome) -> None:
        self.append({"key": self.key, "question": question, "outcome": outcome})


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
