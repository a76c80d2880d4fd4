"""Turn a selection (TRL's `prompt`/`completion` or `messages` rows) into pre-tokenised SFT examples.

The ids come from the one `Renderer` (grape.text) that the scorer uses: the whole text's tokens, split
where the response starts, with the end marker (EOS or the chat template's end-of-turn). So the model is
trained on exactly the token sequence it scored, and ``completion_mask`` (1 on response tokens) makes
the loss fall on the response only. A weighted objective also reads a row's optional ``loss_weights``: one
float ≥ 0 per response token as the renderer splits it (end marker included), absent = all 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grape.data.records import Messages
from grape.errors import InputError
from grape.text import PromptError, Renderer


@dataclass
class SFTExample:
    input_ids: list[int]
    completion_mask: list[int]  # 0 on prompt tokens, 1 on response tokens (EOS included)
    loss_weights: list[float] | None = None  # per token of input_ids, 0 on prompt tokens; None: not read


def prompt_and_response(row: dict[str, Any], file: str, number: int) -> tuple[str | Messages, str]:
    """The prompt (text or chat messages) and the response text of one selection row."""
    if "messages" in row and row["messages"] is not None:
        messages = row["messages"]
        if not isinstance(messages, list) or not messages or not _is_message(messages[-1]):
            raise InputError(file, number, "messages", "expected a list of {role, content} messages")
        if messages[-1]["role"] != "assistant":
            raise InputError(file, number, "messages", "the last message must be the assistant's response")
        return [dict(m) for m in messages[:-1]], messages[-1]["content"]
    prompt, completion = row.get("prompt"), row.get("completion")
    if prompt is None or completion is None:
        missing = "prompt" if prompt is None else "completion"
        raise InputError(file, number, missing, "missing: a row needs `prompt` and `completion`, or `messages`")
    if isinstance(completion, list):  # conversational prompt-completion: [{"role": "assistant", ...}]
        if len(completion) != 1 or not _is_message(completion[0]):
            raise InputError(file, number, "completion", "expected one assistant message")
        completion = completion[0]["content"]
    if not isinstance(completion, str) or not completion.strip():
        raise InputError(file, number, "completion", "expected a non-empty string")
    if not (isinstance(prompt, str) or (isinstance(prompt, list) and all(_is_message(m) for m in prompt))):
        raise InputError(file, number, "prompt", "expected a string or a list of {role, content} messages")
    return prompt, completion


def tokenise_examples(
    rows: list[dict[str, Any]], renderer: Renderer, max_length: int, file: str = "selection", weighted: bool = False
) -> list[SFTExample]:
    """One example per row, in order. A row longer than ``max_length`` tokens is an error, never cut:
    a truncated response would teach the model to stop mid-answer (or never see its EOS).
    ``weighted``: read each row's ``loss_weights`` too (`response_weights`)."""
    examples = []
    for number, row in enumerate(rows, start=1):
        prompt, response = prompt_and_response(row, file, number)
        try:
            ids = renderer.encode(prompt, [response])[0]
        except PromptError as exc:
            raise InputError(file, number, "prompt", str(exc)) from exc
        total = len(ids.prompt) + len(ids.response)
        if total > max_length:
            raise InputError(file, number, None, f"{total} tokens, over max_length {max_length} (raise --max-length)")
        example = SFTExample(ids.prompt + ids.response, [0] * len(ids.prompt) + [1] * len(ids.response))
        if weighted:
            example.loss_weights = [0.0] * len(ids.prompt) + response_weights(row, len(ids.response), file, number)
        examples.append(example)
    return examples


def response_weights(row: dict[str, Any], n_tokens: int, file: str, number: int) -> list[float]:
    """The row's ``loss_weights`` (one finite float ≥ 0 per response token), or all 1 when it has none."""
    weights = row.get("loss_weights")
    if weights is None:
        return [1.0] * n_tokens
    if not isinstance(weights, (list, tuple)) or not all(_is_number(w) for w in weights):
        raise InputError(file, number, "loss_weights", "expected a list of numbers, one per response token")
    if len(weights) != n_tokens:
        message = f"{len(weights)} weights for {n_tokens} response tokens (the end marker included)"
        raise InputError(file, number, "loss_weights", message)
    bad = next((i for i, w in enumerate(weights) if not (math.isfinite(w) and w >= 0)), None)
    if bad is not None:
        raise InputError(file, number, "loss_weights", f"weight {bad} is {weights[bad]}: expected a finite value >= 0")
    return [float(w) for w in weights]


def to_dataset(examples: list[SFTExample]):
    """A `datasets.Dataset` that TRL's SFTTrainer takes as pre-tokenised (it has `input_ids`); with a
    `loss_weights` column when the examples carry weights."""
    from datasets import Dataset

    columns = {"input_ids": [e.input_ids for e in examples], "completion_mask": [e.completion_mask for e in examples]}
    if examples and examples[0].loss_weights is not None:
        columns["loss_weights"] = [e.loss_weights for e in examples]
    return Dataset.from_dict(columns)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_message(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("role"), str) and isinstance(item.get("content"), str)
