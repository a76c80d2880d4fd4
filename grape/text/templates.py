"""Prompt templates: how an instruction (a string or a chat conversation) becomes the text a model continues.

- ``paper``: ``Question: {instruction}\\nAnswer: `` (the GRAPE paper's plain format).
- ``few-shot``: two solved examples in the paper's format, then the instruction: what a base model needs to
  answer at all when it generates (it stops at the next ``\\nQuestion:``).
- ``chat``: the tokenizer's chat template with the generation prompt; the response then ends with the
  template's own end-of-turn marker (``<|im_end|>``, ``<end_of_turn>``), found by rendering a turn.
- ``raw``: the instruction as it is.
- a ``.jinja`` file: it receives ``prompt`` (the string, or None), ``messages`` and ``instruction``, and,
  where the caller passes them (generation does), the row's other fields by name (``answer``, ``tests``, any
  column): a template that sees the gold answer can ask a model to paraphrase it (S3FT). A name the row
  does not have is an error (`PromptError`), not an empty string; ``{% if answer is defined %}`` tests for one.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from grape.data.records import Messages
from grape.errors import GrapeError

PAPER_TEMPLATE = "Question: {instruction}\nAnswer: "
BUILTIN_TEMPLATES = ("paper", "few-shot", "chat", "raw")
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
# A base model shown the paper's format goes on to write the next question; these end its answer.
PAPER_STOP = ("\nQuestion:",)
_SENTINEL = "GRAPE_RESPONSE_SENTINEL"


class PromptError(ValueError):
    """A prompt that the chosen template cannot render (reported against the input row)."""


class PromptTemplate:
    """Renders prompts as text; knows the chat template's end-of-turn marker."""

    def __init__(self, tokenizer: Any, template: str = "paper"):
        self.tokenizer, self.name = tokenizer, template
        self._jinja = None
        if template == "chat" and not getattr(tokenizer, "chat_template", None):
            raise GrapeError(
                "this tokenizer has no chat template (a base model?): use --template paper, raw or a .jinja file"
            )
        if template not in BUILTIN_TEMPLATES:
            self._jinja = _load_jinja(template)

    def text(self, prompt: str | Messages, fields: Mapping[str, Any] | None = None) -> str:
        """The prompt as the model will see it, before tokenisation (trailing whitespace included).

        ``fields``: the row's other fields, which only a Jinja template sees (``prompt``, ``messages`` and
        ``instruction`` keep their meaning whatever the row holds).
        """
        if self.name == "chat":
            return self.tokenizer.apply_chat_template(as_messages(prompt), add_generation_prompt=True, tokenize=False)
        if self._jinja is not None:
            text = prompt if isinstance(prompt, str) else None
            names = {**(fields or {}), "prompt": text, "messages": as_messages(prompt)}
            return _render_jinja(self._jinja, {**names, "instruction": _instruction(prompt, None)})
        instruction = _instruction(prompt, self.name)
        if self.name == "raw":
            return instruction
        shots = "".join(PAPER_TEMPLATE.format(instruction=q) + f"{a}\n\n" for q, a in FEW_SHOT_EXAMPLES)
        return (shots if self.name == "few-shot" else "") + PAPER_TEMPLATE.format(instruction=instruction)

    def end_of_turn(self) -> str | None:
        """The chat template's text after an assistant message (trailing whitespace dropped), or None.

        Found by rendering a one-turn conversation with a sentinel answer: the text between the sentinel
        and the end is the marker (``<|im_end|>`` for SmolLM2, ``<end_of_turn>`` for Gemma 3).
        """
        if self.name != "chat":
            return None
        user = [{"role": "user", "content": "Hi"}]
        prompt = self.text(user)
        full = self.tokenizer.apply_chat_template([*user, {"role": "assistant", "content": _SENTINEL}], tokenize=False)
        rest = full[len(prompt) :] if full.startswith(prompt) else ""
        if not rest.startswith(_SENTINEL):
            raise GrapeError(
                "this chat template renders an assistant turn that does not continue its generation prompt "
                "(e.g. it inserts reasoning tags): use --no-eos, or a .jinja template"
            )
        return rest[len(_SENTINEL) :].rstrip() or None


def stop_strings(template: str) -> list[str]:
    """Stop strings a template needs when a model generates from it (none for a chat model: it ends its turn)."""
    return list(PAPER_STOP) if template in ("paper", "few-shot") else []


def as_messages(prompt: str | Messages) -> Messages:
    return prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]


def _instruction(prompt: str | Messages, template: str | None) -> str:
    """The text of a one-turn prompt (a system message kept in front); more turns need a chat template."""
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m["role"] != "system"]
    if len(users) == 1 and users[0]["role"] == "user":
        system = [m["content"] for m in prompt if m["role"] == "system"]
        return "\n\n".join([*system, users[0]["content"]])
    raise PromptError(
        f"template '{template}' renders one user turn; this conversation has {len(users)} turns: use --template chat"
    )


def _render_jinja(template: Any, names: dict[str, Any]) -> str:
    from jinja2 import UndefinedError

    try:
        return template.render(**names)
    except UndefinedError as exc:  # e.g. "'answer' is undefined": the row has no such field
        raise PromptError(f"the template uses a field this row does not have ({exc})") from exc


def _load_jinja(path: str):
    from jinja2 import StrictUndefined, TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    file = Path(path)
    if not file.is_file():
        raise GrapeError(f"--template {path}: not one of {BUILTIN_TEMPLATES} and not a file")
    try:
        env = ImmutableSandboxedEnvironment(keep_trailing_newline=True, undefined=StrictUndefined)
        return env.from_string(file.read_text(encoding="utf-8"))
    except TemplateError as exc:
        raise GrapeError(f"{path}: invalid Jinja template ({exc})") from exc
