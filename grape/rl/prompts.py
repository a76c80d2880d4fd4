"""The questions RL learns on: each row's prompt ids (through the one Renderer) and the item its verifier reads,
and the tokens that end an answer."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.data.read_rows import RawRow, read_rows
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
    """Every row of ``path`` as a `Question`; a row rl cannot use is a one-line error naming file, row and field
    (`questions_or_errors`)."""
    questions = []
    for question in questions_or_errors(path, renderer, prompt_column, answer_column, max_prompt_tokens,
                                        answer_required):  # fmt: skip
        if isinstance(question, InputError):
            raise question
        questions.append(question)
    return _not_empty(questions, [], path)


def read_questions_skipping(
    path: str | Path,
    renderer: Renderer,
    prompt_column: str,
    answer_column: str,
    max_prompt_tokens: int,
    answer_required: bool = True,
) -> tuple[list[Question], list[InputError]]:
    """(a `Question` for each row of ``path`` rl can use, the errors of those it cannot use): ``on_error: skip``."""
    questions, skipped = [], []
    for question in questions_or_errors(path, renderer, prompt_column, answer_column, max_prompt_tokens,
                                        answer_required):  # fmt: skip
        (skipped if isinstance(question, InputError) else questions).append(question)
    return _not_empty(questions, skipped, path), skipped


def questions_or_errors(
    path: str | Path, renderer: Renderer, prompt_column: str, answer_column: str, max_prompt_tokens: int,
    answer_required: bool = True,
) -> Iterator[Question | InputError]:  # fmt: skip
    """Each row of ``path`` as a `Question`, or the error naming why rl cannot use it. A prompt longer than
    ``max_prompt_tokens`` is refused, never cut: its start (a system turn, the tool list) is as much the question
    as its end. ``answer_required``: the answer column must be present and non-empty (the math, number and exact
    verifiers; the code verifier reads the row's tests instead)."""
    file = str(path)
    for raw in read_rows(path):
        if raw.data is None:
            yield InputError(file, raw.row, None, raw.error or "unreadable row")
            continue
        prompt, answer = raw.data.get(prompt_column), raw.data.get(answer_column)
        missing = answer is None or (isinstance(answer, str) and not answer.strip())
        if not (isinstance(prompt, str) and prompt.strip()) and not _is_messages(prompt):
            yield InputError(file, raw.row, prompt_column, "expected a non-empty string or a list of chat messages")
        elif missing and answer_required:
            yield InputError(file, raw.row, answer_column, "missing: the verifier needs the gold answer")
        else:
            yield _rendered(raw, file, renderer, prompt_column, max_prompt_tokens, None if missing else answer)


def _rendered(
    raw: RawRow, file: str, renderer: Renderer, prompt_column: str, max_prompt_tokens: int, answer: Any
) -> Question | InputError:
    try:
        ids = renderer.generation_ids(raw.data[prompt_column])
    except PromptError as exc:
        return InputError(file, raw.row, prompt_column, str(exc))
    if len(ids) > max_prompt_tokens:
        reason = f"{len(ids)} tokens, over max_prompt_tokens {max_prompt_tokens} (raise --max-prompt-tokens, or "
        return InputError(file, raw.row, prompt_column, reason + "--on-error skip to leave it out)")
    return Question(raw.row, ids, raw.data if answer is None else {**raw.data, "answer": answer})


def _not_empty(questions: list[Question], skipped: list[InputError], path: str | Path) -> list[Question]:
    if questions:
        return questions
    if skipped:
        raise InputError(str(path), None, None, f"all {len(skipped)} rows skipped; the first: {skipped[0]}")
    raise InputError(str(path), None, None, "no rows")


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
