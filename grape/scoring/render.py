"""Render prompts with a template and tokenise prompts and responses separately.

Prompt ids and response ids are tokenised on their own and concatenated, so that all candidates of
an instruction share exactly the same prompt tokens (which is what makes prefix sharing possible) and
no token straddles the prompt/response boundary.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from grape.data.records import Messages
from grape.errors import GrapeError

PAPER_TEMPLATE = "Question: {instruction}\nAnswer: "
BUILTIN_TEMPLATES = ("paper", "chat", "raw")


class PromptError(ValueError):
    """A prompt that the chosen template cannot render (reported against the input row)."""


class Renderer:
    """Turns a prompt (string or chat messages) into token ids, and a response into token ids."""

    def __init__(self, tokenizer: Any, template: str = "paper", eos: bool = True):
        self.tokenizer, self.template, self.eos = tokenizer, template, eos
        self._jinja = None
        if template == "chat" and not getattr(tokenizer, "chat_template", None):
            raise GrapeError(
                "this tokenizer has no chat template (a base model?): use --template paper, raw or a .jinja file"
            )
        if template not in BUILTIN_TEMPLATES:
            self._jinja = _load_jinja(template)
        if eos and tokenizer.eos_token_id is None:
            raise GrapeError("this tokenizer has no EOS token: pass --no-eos")

    def prompt_text(self, prompt: str | Messages) -> str:
        """The prompt as the model will see it (before tokenisation)."""
        if self.template == "chat":
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        if self._jinja is not None:
            messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
            text = prompt if isinstance(prompt, str) else None
            return self._jinja.render(prompt=text, messages=messages, instruction=_instruction(prompt, None))
        instruction = _instruction(prompt, self.template)
        return PAPER_TEMPLATE.format(instruction=instruction) if self.template == "paper" else instruction

    def prompt_ids(self, prompts: list[str | Messages]) -> list[list[int]]:
        texts = [self.prompt_text(p) for p in prompts]
        bos = self.tokenizer.bos_token
        # Special tokens (BOS) are added unless the rendered text already carries them (chat templates do).
        plain = [i for i, t in enumerate(texts) if not (bos and t.startswith(bos))]
        marked = [i for i in range(len(texts)) if i not in set(plain)]
        ids: list[list[int]] = [[] for _ in texts]
        for indices, special in ((plain, True), (marked, False)):
            if indices:
                encoded = self.tokenizer([texts[i] for i in indices], add_special_tokens=special)["input_ids"]
                for i, row in zip(indices, encoded, strict=True):
                    ids[i] = list(row)
        return ids

    def response_ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        encoded = self.tokenizer(texts, add_special_tokens=False)["input_ids"]
        tail = [self.tokenizer.eos_token_id] if self.eos else []
        return [list(row) + tail for row in encoded]


def _instruction(prompt: str | Messages, template: str | None) -> str:
    if isinstance(prompt, str):
        return prompt
    users = [m for m in prompt if m["role"] != "system"]
    if len(users) == 1 and users[0]["role"] == "user":
        system = [m["content"] for m in prompt if m["role"] == "system"]
        return "\n\n".join([*system, users[0]["content"]])
    raise PromptError(
        f"template '{template}' renders one user turn; this conversation has {len(users)} turns: use --template chat"
    )


def _load_jinja(path: str):
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    file = Path(path)
    if not file.is_file():
        raise GrapeError(f"--template {path}: not one of {BUILTIN_TEMPLATES} and not a file")
    try:
        env = ImmutableSandboxedEnvironment(keep_trailing_newline=True)
        return env.from_string(file.read_text(encoding="utf-8"))
    except TemplateError as exc:
        raise GrapeError(f"{path}: invalid Jinja template ({exc})") from exc
