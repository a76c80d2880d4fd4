"""A warning before scoring: the target's tokenizer has a chat template, yet candidates are scored with `paper`.

`paper` is the GRAPE paper's plain format and the right one for a base model. A chat (instruction-tuned)
target was trained on its chat template, though, and is fine-tuned and prompted with it later: scoring
its fit in another format measures something else. Many base models ship a chat template too, so this is
a warning, not an error: the user knows which kind of model it is.
"""

from __future__ import annotations

from typing import Any

from grape.console import console


def chat_template_warning(tokenizer: Any, template: str, model: str) -> str | None:
    """The warning for scoring ``model`` with ``template``, or None when there is nothing to say."""
    if template != "paper" or not getattr(tokenizer, "chat_template", None):
        return None
    return (
        f"{model}'s tokenizer has a chat template, but the candidates are scored with --template paper "
        "('Question: ...\\nAnswer: ', the paper's format for a base model). For a chat model, --template chat "
        "renders each prompt with its chat template and scores the response up to the template's end-of-turn "
        "marker, as the model will be trained and prompted"
    )


def note_chat_template(tokenizer: Any, template: str, model: str) -> None:
    warning = chat_template_warning(tokenizer, template, model)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
