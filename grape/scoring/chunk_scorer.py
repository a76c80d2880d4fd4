"""Score one chunk of instructions into a part: render, tokenise, run the engine, one outcome per candidate.

The same code runs in the single-process scorer and in each Ray worker, so both give the same rows.
A candidate that cannot be scored (prompt the template cannot render, prompt + response over the
model's context) is recorded as skipped with the reason in ``detail``; the caller decides whether that
is an error (``--on-error fail``) or a recorded skip.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa

from grape.data.records import SCORED, Messages, skipped
from grape.models.context import context_length
from grape.models.load import LoadedModel
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup
from grape.scoring.parts import PART_SCHEMA
from grape.text import PromptError, Renderer


@dataclass
class WorkItem:
    """One instruction to score: its key, id, prompt and the (index, text) of its valid candidates."""

    key: str
    id: str | None
    prompt: str | Messages
    candidates: list[tuple[int, str]]

    def to_dict(self) -> dict:
        return {"key": self.key, "id": self.id, "prompt": self.prompt, "candidates": self.candidates}

    @classmethod
    def from_dict(cls, data: dict) -> WorkItem:
        return cls(data["key"], data["id"], data["prompt"], [(int(k), t) for k, t in data["candidates"]])


class ChunkScorer:
    def __init__(self, loaded: LoadedModel, template: str, eos: bool, engine: EngineSettings | None = None):
        self.renderer = Renderer(loaded.tokenizer, template, eos)
        self.max_len = context_length(loaded)
        self.engine = ScoringEngine(loaded.model, engine)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"

    def score(self, items: list[WorkItem], on_batch: Callable[[int, int], None] | None = None) -> pa.Table:
        """Return a `PART_SCHEMA` table with one row per candidate of ``items``."""
        rows: dict[tuple[int, int], dict] = {}  # (item, candidate) -> row, filled in input order below
        groups, owners = [], []
        for i, item in enumerate(items):
            rendered = render_item(self.renderer, self.max_len, item)
            for k, (reason, detail) in rendered.skipped.items():
                rows[i, k] = _skip(item, k, reason, detail)
            for prompt, kept in rendered.groups:
                groups.append(TokenGroup(prompt, [ids for _, ids in kept]))
                owners.append((i, [k for k, _ in kept]))
        results = self.engine.score(groups, on_batch=on_batch) if groups else []
        for (i, keep), result in zip(owners, results, strict=True):
            for j, k in enumerate(keep):
                rows[i, k] = {
                    "key": items[i].key, "id": items[i].id, "candidate": k, "n_tokens": int(result.n_tokens[j]),
                    "sum_logprob": float(result.sum_logprob[j]), "status": SCORED, "detail": None,
                }  # fmt: skip
        ordered = [{**rows[i, k], "worker": self.worker} for i, item in enumerate(items) for k, _ in item.candidates]
        return pa.Table.from_pylist(ordered, schema=PART_SCHEMA)


@dataclass
class RenderedItem:
    """One instruction's token ids as the engine gets them, and the candidates it cannot score."""

    groups: list[tuple[list[int], list[tuple[int, list[int]]]]]  # (prompt ids, [(candidate, response ids)])
    skipped: dict[int, tuple[str, str]]  # candidate -> (reason, detail)


def render_item(renderer: Renderer, max_len: int, item: WorkItem) -> RenderedItem:
    """Render and tokenise an instruction's candidates (whole-text ids); group them by shared prompt ids and
    set aside what cannot be scored. The scorer and `grape score --dry-run` both count through this."""
    try:
        encoded = renderer.encode(item.prompt, [text for _, text in item.candidates])
    except PromptError as exc:
        return RenderedItem([], {k: ("invalid_prompt", str(exc)) for k, _ in item.candidates})
    # Candidates whose whole-text ids split at the same prompt ids share one prefix (almost always all
    # K; a response whose first characters merge with the prompt's last ones makes a group of its own).
    by_prompt: dict[tuple[int, ...], list[tuple[int, list[int]]]] = {}
    skipped: dict[int, tuple[str, str]] = {}
    for (k, _), ids in zip(item.candidates, encoded, strict=True):
        total = len(ids.prompt) + len(ids.response)
        if total > max_len:
            skipped[k] = ("too_long", f"prompt + response is {total} tokens, over the model's {max_len}")
        else:
            by_prompt.setdefault(tuple(ids.prompt), []).append((k, ids.response))
    return RenderedItem([(list(prompt), kept) for prompt, kept in by_prompt.items()], skipped)


def _skip(item: WorkItem, k: int, reason: str, detail: str) -> dict:
    return {
        "key": item.key, "id": item.id, "candidate": k, "n_tokens": None, "sum_logprob": None,
        "status": skipped(reason), "detail": detail,
    }  # fmt: skip
