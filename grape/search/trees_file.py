"""The searched trees of `grape itool mcts`, kept: a killed search resumes where it stopped, and a run with other
pair rules (``--pairs answer``, ``--min-gap`` ...) takes its pairs from the trees already searched.

A search costs minutes per question on a CPU (simulations × sampled continuations); the pairs read from its tree
cost nothing. Each question's search (its tree with every node's value and visits, the judged answers and the
generator calls: `grape.search.mcts.search_record`) is appended to the trees file as it is found, one JSON line,
flushed: ``<output>.trees.jsonl`` by default, or the ``trees`` setting's file, which several runs may share (the
BFCL experiment's step- and answer-pair arms read one search). A run takes the trees made under its key and
searches only the other questions; its output is the same as a run that searched everything, because each
question samples from its own seed (its id and the run's seed), not from where the previous question left the
generator.

The key covers what shapes a search: the model (every tensor, `loaded_fingerprint`) and every setting but the pair
rules (which only read a tree), dtype, device and how many questions are searched at once (which change rounding
only) and the file's own place; each question is matched by its id and its whole row. A torn last line, or a line
under another key, is passed over.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grape.data.journal_file import JournalFile, read_journal
from grape.models.fingerprint import loaded_fingerprint
from grape.models.load import LoadedModel
from grape.search.mcts import Search, search_from_record, search_record
from grape.search.settings import PAIR_RULES, MCTSSettings

# bump when what a line holds or how a search samples changes, so that older lines are not read
# (1: pairs, not trees; 2: sampled with one global seed per call, not one stream per continuation)
TREES_VERSION = 3
NOT_SHAPING = ("dtype", "device", "model", "trees", "questions_at_once", *PAIR_RULES)


def search_key(loaded: LoadedModel, settings: MCTSSettings) -> str:
    """A 16-hex key of the model and the settings that shape a search."""
    shaping = {k: v for k, v in asdict(settings).items() if k not in NOT_SHAPING}
    described = {"version": TREES_VERSION, "model": loaded_fingerprint(loaded), "settings": shaping}
    return _digest(json.dumps(described, sort_keys=True, default=str).encode())[:16]


def question_key(ident: str, row: dict[str, Any]) -> str:
    """A question's key: its id and its whole row (an edited row is searched again)."""
    return _digest(json.dumps([ident, row], ensure_ascii=False, sort_keys=True, default=str).encode())[:24]


def trees_path(output: str | Path | None, trees: str | Path | None) -> Path | None:
    """The trees file: ``trees`` when given, else beside the output (None without either: nothing is kept)."""
    if trees is not None:
        return Path(trees)
    return None if output is None else Path(output).with_name(Path(output).name + ".trees.jsonl")


def read_trees(path: Path | None, key: str) -> dict[str, Search]:
    """The searches kept in ``path`` under ``key``, by question key (the last line of a question wins)."""
    return {entry["question"]: search_from_record(entry["search"]) for entry in read_journal(path)
            if entry.get("key") == key}  # fmt: skip


class TreesFile(JournalFile):
    """Appends each question's search to the trees file as it is found (nothing when the path is None)."""

    def __init__(self, path: Path | None, key: str):
        super().__init__(path)
        self.key = key

    def record(self, question: str, found: Search) -> None:
        self.append({"key": self.key, "question": question, "search": search_record(found)})


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
