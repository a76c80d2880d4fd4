"""Preference pairs (TRL's `prompt`/`chosen`/`rejected` rows, as `grape pairs` writes them) as the token ids grape
renders and scores.

A row's prompt is a string or a chat list of {role, content}; chosen and rejected are strings, or TRL's
conversational form, a list of one assistant message. Each pair is rendered by the one `Renderer` (grape.text):
the whole text ``prompt + response (+ end marker)`` is tokenised and split where the response starts, so DPO
trains on exactly the tokens the scorer scored (TRL would tokenise the prompt apart and lose the paper template's
boundary: the prompt's trailing space belongs to the response's first token).

TRL's preference collator lays out ``prompt_ids + chosen_ids`` and ``prompt_ids + rejected_ids``: one prompt for
both. The renderer's split of the two can differ: with ``paper``, ``…Answer: `` before ``The`` gives the space to
the response's first token (`` The``), before ``2`` it stays a token of its own (Gemma splits digits), so the
prompt of ``2 + 3 = 5`` is one token longer. The shared ``prompt_ids`` are then the common prefix, and the few
prompt tokens of a response's own split that follow it (``chosen_prompt_tail``) are in its sequence but carry no
loss and no log-prob, exactly as they count in the scorer's ``sum_logprob`` (not at all).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grape.console import console
from grape.data.records import Messages
from grape.errors import InputError
from grape.text import PromptError, Renderer

RESPONSES = ("chosen", "rejected")


@dataclass(frozen=True)
class PreferencePair:
    """One pair's ids: ``prompt_ids + chosen_ids`` is the whole text's tokenisation of prompt + chosen (with the
    end marker), and likewise for rejected."""

    prompt_ids: list[int]  # shared by both: the common prefix of their prompts as the renderer splits them
    chosen_ids: list[int]
    rejected_ids: list[int]
    chosen_prompt_tail: int = 0  # leading tokens of chosen_ids that are prompt in chosen's own split: no loss
    rejected_prompt_tail: int = 0

    def scored(self, name: str) -> list[int]:
        """The response tokens of ``name`` (chosen or rejected) that carry log-probs: the scorer's response ids."""
        ids, tail = (self.chosen_ids, self.chosen_prompt_tail) if name == "chosen" else (
            self.rejected_ids, self.rejected_prompt_tail)  # fmt: skip
        return ids[tail:]


def pair_texts(row: dict[str, Any], file: str, number: int) -> tuple[str | Messages, str, str]:
    """The prompt (text or chat messages), the chosen and the rejected response text of one pairs row."""
    prompt = row.get("prompt")
    if prompt is None:
        raise InputError(file, number, "prompt", "missing: a pair needs `prompt`, `chosen` and `rejected`")
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and prompt and all(map(_is_message, prompt)))):
        raise InputError(file, number, "prompt", "expected a string or a list of {role, content} messages")
    return prompt, _response(row, "chosen", file, number), _response(row, "rejected", file, number)


def read_pairs(rows: list[dict[str, Any]], file: str = "pairs") -> list[tuple[str | Messages, str, str]]:
    """Every row's (prompt, chosen, rejected), in order; the first bad row is an error naming its field. Pairs whose
    chosen and rejected are one text are kept and said (their loss is a constant: they teach nothing)."""
    texts = [pair_texts(row, file, number) for number, row in enumerate(rows, start=1)]
    same = [number for number, (_, chosen, rejected) in enumerate(texts, start=1) if chosen == rejected]
    if same:
        rows_named = ", ".join(map(str, same[:5])) + (", ..." if len(same) > 5 else "")
        said = f"{len(same)} of {len(texts)} pairs have the same chosen and rejected text (rows {rows_named})"
        console.print(f"[yellow]warning:[/] {file}: {said}: they teach nothing", highlight=False, soft_wrap=True)
    return texts


def tokenise_pairs(
    texts: list[tuple[str | Messages, str, str]], renderer: Renderer, max_length: int, file: str = "pairs"
) -> list[PreferencePair]:
    """One pair per (prompt, chosen, rejected) of `read_pairs`, in order. A prompt + response longer than
    ``max_length`` tokens is an error, never cut."""
    pairs = []
    for number, (prompt, chosen, rejected) in enumerate(texts, start=1):
        try:
            encoded = renderer.encode(prompt, [chosen, rejected])
        except PromptError as exc:
            raise InputError(file, number, "prompt", str(exc)) from exc
        for name, ids in zip(RESPONSES, encoded, strict=True):
            total = len(ids.prompt) + len(ids.response)
            if total > max_length:
                raise InputError(file, number, name, f"prompt + {name} is {total} tokens, over max_length "
                                 f"{max_length} (raise --max-length)")  # fmt: skip
        chosen, rejected = encoded
        shared = _common_prefix(chosen.prompt, rejected.prompt)
        pairs.append(PreferencePair(
            chosen.prompt[:shared], chosen.prompt[shared:] + chosen.response,
            rejected.prompt[shared:] + rejected.response, len(chosen.prompt) - shared, len(rejected.prompt) - shared,
        ))  # fmt: skip
    return pairs


def _common_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))


def _response(row: dict[str, Any], name: str, file: str, number: int) -> str:
    value = row.get(name)
    if value is None:
        raise InputError(file, number, name, "missing: a pair needs `prompt`, `chosen` and `rejected`")
    if isinstance(value, list):  # TRL's conversational form: [{"role": "assistant", "content": ...}]
        if len(value) != 1 or not _is_message(value[0]) or value[0]["role"] != "assistant":
            raise InputError(file, number, name, "expected a string or a list of one assistant message")
        value = value[0]["content"]
    if not isinstance(value, str) or not value.strip():
        raise InputError(file, number, name, "expected a non-empty string")
    return value


def _is_message(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("role"), str) and isinstance(item.get("content"), str)
