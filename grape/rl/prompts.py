"""The questions RL learns on: each row's prompt ids (through the one Renderer) and the item its verifier reads,
and the tokens that end an answer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.data.read_rows import read_rows
from grape.errors import InputError
from grape.text import PromptError, Renderer


@dataclass
class Question:
    row: int  # 1-based, in the input file
    prompt_ids: list[int]
    item: dict[str, Any]  # the row, with `answer` taken from the answer column: what the verifier reads


def read_questions(
    path: str | Path,
    renderer: Renderer,
    prompt_column: str,
    answer_column: str,
    max_prompt_tokens: int,
    answer_required: bool = True,
) -> list[Question]:
    """Every row of ``path`` as a `Question`; a bad row is a one-line error naming file, row and field.

    Prompts longer than ``max_prompt_tokens`` keep their last tokens (the question's end and the ``Answer:``
    cue matter most to what comes next). ``answer_required``: the answer column must be present and non-empty
    (the math, number and exact verifiers; the code verifier reads the row's tests instead).
    """
    file, questions = str(path), []
    for raw in read_rows(path):
        if raw.data is None:
            raise InputError(file, raw.row, None, raw.error or "unreadable row")
        prompt = raw.data.get(prompt_column)
        if not (isinstance(prompt, str) and prompt.strip()) and not _is_messages(prompt):
            raise InputError(file, raw.row, prompt_column, "expected a non-empty string or a list of chat messages")
        answer = raw.data.get(answer_column)
        missing = answer is None or (isinstance(answer, str) and not answer.strip())
        if missing and answer_required:
            raise InputError(file, raw.row, answer_column, "missing: the verifier needs the gold answer")
        try:
            ids = renderer.generation_ids(prompt)
        except PromptError as exc:
            raise InputError(file, raw.row, prompt_column, str(exc)) from exc
        item = raw.data if missing else {**raw.data, "answer": answer}
        questions.append(Question(raw.row, ids[-max_prompt_tokens:], item))
    if not questions:
        raise InputError(file, None, None, "no rows")
    return questions


def _is_messages(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(m, dict) and isinstance(m.get("role"), str) and "content" in m for m in value)
    )


def stop_ids(renderer: Renderer, tokenizer: Any) -> list[int]:
    """The tokens that end an answer: EOS, and the chat template's end-of-turn marker when it is one token."""
    ids = list(renderer.end_ids)
    if renderer.end_text:
        marker = tokenizer(renderer.end_text.strip(), add_special_tokens=False)["input_ids"]
        ids += marker if len(marker) == 1 else []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))
