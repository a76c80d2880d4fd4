"""How a generator is prompted: a template of the one renderer (grape.text), chosen per model.

``auto`` is the model's chat template where its tokenizer has one, else ``few-shot``: a base model,
shown two solved examples in the paper's ``Question:/Answer:`` form, answers the third and then tends
to start a fourth, so ``\\nQuestion:`` is a stop string. The prompt ids come from `Renderer.generation_ids`,
so a candidate stored as text comes back as the tokens it was generated as when it is scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grape.errors import GrapeError
from grape.text.templates import BUILTIN_TEMPLATES, stop_strings

PROMPT_FORMATS = ("auto", *BUILTIN_TEMPLATES)


def resolve_format(prompt_format: str, tokenizer: Any | None) -> str:
    """The template a generator uses: ``auto`` resolved; a `.jinja` file is taken as it is."""
    if prompt_format not in PROMPT_FORMATS and not Path(prompt_format).is_file():
        raise GrapeError(f"unknown prompt format '{prompt_format}': use one of {PROMPT_FORMATS} or a .jinja file")
    has_template = bool(getattr(tokenizer, "chat_template", None))
    if prompt_format == "auto":
        return "chat" if has_template else "few-shot"
    if prompt_format == "chat" and tokenizer is not None and not has_template:
        raise GrapeError("--prompt-format chat: this model's tokenizer has no chat template (a base model?)")
    return prompt_format


def generation_stops(prompt_format: str, user_stop: list[str]) -> list[str]:
    """The user's stop strings and the template's own, without repeats."""
    return list(dict.fromkeys([*user_stop, *stop_strings(prompt_format)]))


def cut_at_stop(text: str, stops: list[str]) -> tuple[str, bool]:
    """(text up to the first stop string, whether one was found); the stop string itself is dropped."""
    cut = min((i for i in (text.find(s) for s in stops if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)
