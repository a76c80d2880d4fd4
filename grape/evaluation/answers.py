"""The answers an eval has already given, so that a re-run answers only what is missing.

Generation is nearly all of an eval's time; judging is cheap. So answers are kept apart from verdicts:
- while an eval runs, each answer goes to ``<output>.answers.jsonl`` (one JSON line per item, flushed), so a
  killed run loses at most the batch in flight;
- a finished output's rows hold the answers, and its sidecar holds the key they were made under.
A re-run reuses every answer given under the same key, from the finished output or the journal, and
generates the rest; judging is always redone, so the same answers can be re-judged with another verifier
at no generation cost. The key covers what shapes a greedy answer: the model (every tensor of it, in the
dtype loaded), the template (a template file by its content), the stop strings and ``max_new_tokens``. Batch
size and device are not in it: they change rounding only. Each item is matched by its id and prompt, so an
edited item is answered again. Answers by a reward-guided decoder (``decode``) are never reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from grape.data.journal_file import JournalFile, read_journal
from grape.data.tables import read_sidecar, read_table_rows
from grape.models.fingerprint import loaded_fingerprint
from grape.models.load import LoadedModel
from grape.text import BUILTIN_TEMPLATES

ANSWERS_VERSION = 1  # bump when what an answer is changes, so that older ones are not reused
Answer = tuple[str, int, str]  # (text, tokens, finish reason)


def answers_key(loaded: LoadedModel, template: str, stop: list[str], max_new_tokens: int) -> str:
    """A 16-hex key of everything that shapes a greedy answer (see the module's docstring)."""
    if template not in BUILTIN_TEMPLATES and Path(template).is_file():
        template = f"jinja:{_digest(Path(template).read_bytes())}"
    described = {"version": ANSWERS_VERSION, "model": loaded_fingerprint(loaded), "template": template,
                 "stop": list(stop), "max_new_tokens": max_new_tokens}  # fmt: skip
    return _digest(json.dumps(described, sort_keys=True).encode())[:16]


def item_key(item_id: Any, prompt: Any) -> str:
    """An item's key: its id and its prompt (text or messages)."""
    return _digest(json.dumps([str(item_id), prompt], ensure_ascii=False, sort_keys=True).encode())[:24]


def journal_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".answers.jsonl")


def given_answers(output: str | Path, key: str) -> dict[str, Answer]:
    """Answers already given under ``key``: a finished output's (its sidecar names the key), then the journal's
    (a torn last line, or a line under another key, is ignored)."""
    output = Path(output)
    found: dict[str, Answer] = {}
    if output.is_file() and read_sidecar(output).get("answers_key") == key:
        for row in read_table_rows(output):
            if isinstance(row.get("response"), str) and "id" in row and "prompt" in row:
                found[item_key(row["id"], row["prompt"])] = (row["response"], int(row.get("n_tokens") or 0),
                                                             str(row.get("finish_reason") or "stop"))  # fmt: skip
    for entry in read_journal(journal_path(output)):
        if entry.get("key") == key:
            found[entry["item"]] = (entry["response"], entry["n_tokens"], entry["finish_reason"])
    return found


class AnswerJournal(JournalFile):
    """Appends each new answer to ``<output>.answers.jsonl`` as it comes (nothing when there is no output)."""

    def __init__(self, output: str | Path | None, key: str | None):
        super().__init__(journal_path(output) if output is not None else None)
        self.key = key

    def record(self, item: str, answer: Answer) -> None:
        text, n_tokens, finish = answer
        self.append({"key": self.key, "item": item, "response": text, "n_tokens": n_tokens, "finish_reason": finish})


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
