"""The token ids of prompt + response: the ids the tokenizer gives for the whole rendered text.

Tokenising a prompt and its response apart is wrong at the boundary. The paper template's prompt ends
in a space (``Answer: ``); alone it ends in a lone space token, and the response's first word then
takes its no-space variant: a sequence no model has seen. On gemma-3-270m that cost the first token of
"The capital of France is Paris." 19 nats (log p −20.98 instead of −2.14) and moved the response's mean
from −1.751 to −2.782 nats/token, punishing short answers most.

So each candidate is tokenised as a whole, ``prompt_text + response (+ end-of-turn marker)``, and split
where the first token that covers a response character starts: the prompt's trailing whitespace goes
with the response when the tokenizer merges it into the first word, and stays with the prompt when it
is a token of its own (a chat template's ``\\n`` after ``assistant``). The K candidates of an
instruction then almost always share the same prompt ids (prefix sharing). Where a tokenizer merges a
response's first characters with the prompt's last non-space ones (e.g. a raw prompt ending in ``:`` and
a response starting with ``=``), the merged token is scored as the response's first token, and that
candidate's prompt ids are shorter: the scorer then puts it in a group of its own.

The end: EOS for ``paper``/``few-shot``/``raw``/Jinja; the template's own end-of-turn marker for ``chat``
(e.g. ``<end_of_turn>`` where Gemma's EOS is ``<eos>``); nothing with ``eos=False``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from grape.data.records import Messages
from grape.errors import GrapeError
from grape.text.templates import PromptTemplate

# What a response typically starts with: a word. Where the prompt's trailing whitespace merges into it,
# the whitespace is the generator's to write, not part of the generation prompt.
_GENERATION_PROBE = "The"


@dataclass(frozen=True)
class Encoded:
    """One candidate's ids: ``prompt + response`` is the whole text's tokenisation (plus the end marker)."""

    prompt: list[int]
    response: list[int]


class Renderer:
    """One renderer for every stage: scoring, generation prompts, training and evaluation."""

    def __init__(self, tokenizer: Any, template: str = "paper", eos: bool = True):
        self.tokenizer, self.eos = tokenizer, eos
        self.template = PromptTemplate(tokenizer, template)
        self.end_text = self.template.end_of_turn() if eos else None
        self.end_ids: list[int] = []
        if eos and self.end_text is None:
            if tokenizer.eos_token_id is None:
                raise GrapeError("this tokenizer has no EOS token: pass --no-eos")
            self.end_ids = [tokenizer.eos_token_id]

    @property
    def name(self) -> str:
        return self.template.name

    def describe(self) -> dict[str, Any]:
        """What a sidecar records: the template and what ends a response."""
        end = self.end_text or (self.tokenizer.eos_token if self.end_ids else None)
        return {"template": self.name, "response_end": end}

    def prompt_text(self, prompt: str | Messages, fields: Mapping[str, Any] | None = None) -> str:
        """``fields``: the row's other fields (``answer``, ``tests``, ...), seen by a Jinja template only."""
        return self.template.text(prompt, fields)

    def encode(
        self, prompt: str | Messages, responses: list[str], fields: Mapping[str, Any] | None = None
    ) -> list[Encoded]:
        """Each response's (prompt ids, response ids), split from the whole text's ids.

        Raises `PromptError` when the template cannot render the prompt.
        """
        text = self.prompt_text(prompt, fields)
        whole = [text + r + (self.end_text or "") for r in responses]
        special = self._adds_special_tokens(text)
        if not getattr(self.tokenizer, "is_fast", False):
            return [self._encode_without_offsets(text, r, special) for r in responses]
        encoded = self.tokenizer(whole, add_special_tokens=special, return_offsets_mapping=True)
        out = []
        for ids, offsets in zip(encoded["input_ids"], encoded["offset_mapping"], strict=True):
            ids, offsets = list(ids), [tuple(o) for o in offsets]
            if special:  # a tokenizer that appends its own special tokens (EOS) adds them with empty spans
                while ids and offsets[-1] == (0, 0) and ids[-1] in self.tokenizer.all_special_ids:
                    ids.pop(), offsets.pop()
            cut = next((i for i, (_, end) in enumerate(offsets) if end > len(text)), len(ids))
            out.append(Encoded(ids[:cut], ids[cut:] + self.end_ids))
        return out

    def generation_ids(self, prompt: str | Messages, fields: Mapping[str, Any] | None = None) -> list[int]:
        """The ids a generator continues from: the prompt's tokens that no answer's first word merges with.

        With ``paper`` that is ``…Answer:`` (the model writes `` The…`` itself, as in natural text); with a
        chat template the whole generation prompt (its ``\\n`` is a token of its own).
        """
        return self.encode(prompt, [_GENERATION_PROBE], fields)[0].prompt

    def _adds_special_tokens(self, text: str) -> bool:
        """BOS is added unless the rendered text already carries it (chat templates write it themselves)."""
        bos = self.tokenizer.bos_token
        return not (bos and text.startswith(bos))

    def _encode_without_offsets(self, text: str, response: str, special: bool) -> Encoded:
        """A tokenizer without offsets (a slow one): the prompt's trailing whitespace goes with the response."""
        core = text.rstrip()
        prompt = self.tokenizer(core, add_special_tokens=special)["input_ids"]
        tail = text[len(core) :] + response + (self.end_text or "")
        return Encoded(list(prompt), list(self.tokenizer(tail, add_special_tokens=False)["input_ids"]) + self.end_ids)
