"""How a prompt is shown to a generator: its chat template, or a few-shot prefix for a base model.

A base model has no notion of a turn; shown two solved examples in the paper's ``Question:/Answer:``
form, it answers the third and then tends to start a fourth, so ``\\nQuestion:`` is a stop string.
"""

from __future__ import annotations

from typing import Any

from grape.data.records import Messages
from grape.errors import GrapeError

PROMPT_FORMATS = ("auto", "chat", "few-shot", "raw")

FEW_SHOT_EXAMPLES = (
    (
        "A box holds 6 eggs. How many eggs are in 4 boxes?",
        "Each box holds 6 eggs, so 4 boxes hold 4 * 6 = 24 eggs. The answer is 24.",
    ),
    (
        "Give one tip for sleeping better.",
        "Go to bed and get up at the same time every day, even on weekends: a regular rhythm makes it "
        "easier to fall asleep.",
    ),
)
FEW_SHOT_STOP = ["\nQuestion:", "\n\n\n"]


def few_shot_text(instruction: str) -> str:
    shots = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in FEW_SHOT_EXAMPLES)
    return f"{shots}Question: {instruction}\nAnswer:"


def resolve_format(prompt_format: str, tokenizer: Any | None) -> str:
    """``auto`` is the chat template where the tokenizer has one, else the few-shot prefix."""
    if prompt_format not in PROMPT_FORMATS:
        raise GrapeError(f"unknown prompt format '{prompt_format}': use one of {PROMPT_FORMATS}")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if prompt_format == "auto":
        return "chat" if has_template else "few-shot"
    if prompt_format == "chat" and tokenizer is not None and not has_template:
        raise GrapeError("--prompt-format chat: this model's tokenizer has no chat template (a base model?)")
    return prompt_format


def as_messages(prompt: str | Messages) -> Messages:
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]


def single_instruction(prompt: str | Messages) -> str:
    """The text of a one-turn prompt (a system message is kept in front); multi-turn needs a chat template."""
    if isinstance(prompt, str):
        return prompt
    turns = [m for m in prompt if m["role"] != "system"]
    if len(turns) != 1 or turns[0]["role"] != "user":
        raise GrapeError(f"a {len(turns)}-turn conversation needs --prompt-format chat (a chat model)")
    return "\n\n".join([*(m["content"] for m in prompt if m["role"] == "system"), turns[0]["content"]])


def render_prompt(prompt: str | Messages, prompt_format: str, tokenizer: Any) -> tuple[str, bool]:
    """(the text the model continues, whether the tokenizer should add its special tokens, i.e. BOS)."""
    if prompt_format == "chat":
        text = tokenizer.apply_chat_template(as_messages(prompt), add_generation_prompt=True, tokenize=False)
        bos = tokenizer.bos_token
        return text, not (bos and text.startswith(bos))  # chat templates usually write BOS themselves
    instruction = single_instruction(prompt)
    return (few_shot_text(instruction) if prompt_format == "few-shot" else instruction), True


def stop_strings(prompt_format: str, user_stop: list[str]) -> list[str]:
    extra = FEW_SHOT_STOP if prompt_format == "few-shot" else []
    return list(dict.fromkeys([*user_stop, *extra]))


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """(text up to the first stop string, whether one was found); the stop string itself is dropped."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
