"""The search's generator on a transformers model: sampled continuations of a partial answer.

The ids the model continues are the text's tokens. Without a partial answer they are the row prompt's
generation ids (`Renderer.generation_ids`: with ``paper``, ``…Answer:``, the model writing the space itself).
With one, they are the whole text ``prompt + partial answer`` tokenised at once (`Renderer.encode`), never the
ids of the pieces joined: a step cut inside a token (``city=`` of ``city='``) is continued from the tokens
the tokenizer gives that text, exactly as the pairs made from it are trained (grape.training.preference). The
sampled ids are appended as they are within one continuation; its text is what they decode to after the
partial answer's own ids (decoding the new ids alone would drop a SentencePiece word's leading space).

A continuation's log-probs are the model's own (temperature 1, from the raw logits), whatever temperature it
was sampled at: they make the steps' priors P.
"""

from __future__ import annotations

from typing import Any

import torch

from grape.models.load import LoadedModel
from grape.search.generator import Continuation
from grape.text import Renderer


class HFGenerator:
    def __init__(self, loaded: LoadedModel, renderer: Renderer, max_new_tokens: int, temperature: float):
        self.loaded, self.renderer = loaded, renderer
        self.tokenizer = loaded.tokenizer
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.end_ids = end_token_ids(loaded, renderer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.end_ids)

    def context_ids(self, prompt: Any, prefix: str) -> tuple[list[int], list[int]]:
        """(the ids the model continues, the partial answer's ids at their end)."""
        if not prefix:
            return self.renderer.generation_ids(prompt), []
        encoded = self.renderer.encode(prompt, [prefix])[0]
        return encoded.prompt + encoded.response, encoded.response

    @torch.inference_mode()
    def sample(self, prompt: Any, prefix: str, n: int, seed: int) -> list[Continuation]:
        context, head = self.context_ids(prompt, prefix)
        model = self.loaded.model
        input_ids = torch.tensor([context], device=model.device)
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=True,
            temperature=self.temperature, top_k=0, top_p=1.0, max_new_tokens=self.max_new_tokens,
            num_return_sequences=n, return_dict_in_generate=True, output_logits=True,
            pad_token_id=self.pad_id, eos_token_id=sorted(self.end_ids),
        )  # fmt: skip
        new = out.sequences[:, len(context) :]  # [n, T]
        logits = torch.stack(out.logits, dim=1).float()  # [n, T, V], before temperature
        logprobs = torch.log_softmax(logits, dim=-1).gather(-1, new.unsqueeze(-1)).squeeze(-1)  # [n, T]
        continuations = []
        for ids, scores in zip(new.tolist(), logprobs.tolist(), strict=True):
            end = next((i for i, t in enumerate(ids) if t in self.end_ids), None)
            kept = ids if end is None else ids[:end]
            text, ends = decoded_after(self.tokenizer, head, kept)
            if not prefix:  # the answer's leading whitespace belongs to the prompt's end (grape.text)
                lead = len(text) - len(text.lstrip())
                text, ends = text[lead:], [max(0, e - lead) for e in ends]
            continuations.append(Continuation(text, end is not None, ends, scores[: len(kept)]))
        return continuations


def decoded_after(tokenizer: Any, head: list[int], ids: list[int]) -> tuple[str, list[int]]:
    """The text ``ids`` add after ``head``, and each id's end offset in it (a token that completes no character
    yet, a byte of a longer one, ends where the one before it ended)."""

    def decode(tokens: list[int]) -> str:
        return tokenizer.decode(tokens, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    base = decode(head)
    full = decode(head + ids)
    if not full.startswith(base):  # the tokenizer re-spaced the join: place the new text on its own
        head, base, full = [], "", decode(ids)
    text = full[len(base) :]
    ends, last = [], 0
    for k in range(1, len(ids) + 1):
        piece = decode(head + ids[:k])
        last = max(last, min(len(text), len(piece) - len(base))) if piece.startswith(base) else last
        ends.append(last)
    if ends:
        ends[-1] = len(text)
    return text, ends


def end_token_ids(loaded: LoadedModel, renderer: Renderer) -> set[int]:
    """Every token that ends an answer: the tokenizer's EOS, the generation config's, the template's end marker."""
    tokenizer = loaded.tokenizer
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    end_text = Renderer(tokenizer, renderer.name, eos=True).end_text
    if end_text:
        marker = tokenizer.encode(end_text, add_special_tokens=False)
        if len(marker) == 1:
            ids.add(marker[0])
    return {i for i in ids if i is not None}
