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

**The prompt is computed once per question.** A search asks for up to 10 continuations of one prompt (5 expansions,
5 rollouts), and tool-calling prompts are long (the tool documentation: BFCL's live_multiple prompts run 182–3,971
tokens, median 750) while a continuation is ≤ 50 tokens: computing the prompt once removes ~80% of the context
positions (1.19× faster searches on 342–569-token prompts on a CPU, docs/performance.md; the decoding steps are the
rest). The generator keeps the KV cache of the current prompt's generation ids but the last, and each call
continues a copy of it, expanded to the call's ``n`` rows, feeding only the ids after it: the context is still the
whole text's tokens, and a call whose context does not start with the kept ids (a tokenizer that merges the
prompt's last token with the partial answer) runs from scratch. Sampling draws the same tokens as the uncached call
with the same seed (tests/search/test_hf_generator.py); ``prompt_cache=False`` is that reference.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from grape.models.kv_cache import cache_keyword, cache_of, shared_prefix_length
from grape.models.load import LoadedModel
from grape.search.generator import Continuation
from grape.text import Renderer


class HFGenerator:
    def __init__(self, loaded: LoadedModel, renderer: Renderer, max_new_tokens: int, temperature: float,
                 prompt_cache: bool = True):  # fmt: skip
        self.loaded, self.renderer = loaded, renderer
        self.tokenizer = loaded.tokenizer
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.end_ids = end_token_ids(loaded, renderer)
        pad = self.tokenizer.pad_token_id
        self.pad_id = pad if pad is not None else min(self.end_ids)
        self.prompt_cache = prompt_cache
        self.keyword = cache_keyword(loaded.model)
        self.kept_ids: list[int] = []  # the ids whose KV cache is kept: the current prompt's but the last
        self.kept_cache: Any = None
        self.prompt_builds = 0  # how many prompts' caches were computed
        self.tokens_fed = 0  # context positions the model computed (the kept prompt once, then each call's rest)

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
        cache = self._kept_for(prompt, context) if self.prompt_cache else None
        if cache is None:  # one row, which generate expands to n
            input_ids, repeats, extra = torch.tensor([context], device=model.device), n, {}
            self.tokens_fed += len(context)
        else:  # generate expands tensors only: the cache and the ids come expanded
            cache.batch_repeat_interleave(n)
            input_ids, repeats, extra = torch.tensor([context] * n, device=model.device), 1, {self.keyword: cache}
            self.tokens_fed += len(context) - len(self.kept_ids)
        torch.manual_seed(seed)
        out = model.generate(
            input_ids=input_ids, attention_mask=torch.ones_like(input_ids), do_sample=True,
            temperature=self.temperature, top_k=0, top_p=1.0, max_new_tokens=self.max_new_tokens,
            num_return_sequences=repeats, return_dict_in_generate=True, output_logits=True,
            pad_token_id=self.pad_id, eos_token_id=sorted(self.end_ids), **extra,
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

    def _kept_for(self, prompt: Any, context: list[int]) -> Any:
        """A copy of the prompt's kept KV cache (computed when the prompt changes) when ``context`` starts with its
        ids, else None (the call runs from scratch)."""
        wanted = self.renderer.generation_ids(prompt)[:-1]
        if wanted != self.kept_ids:
            self.kept_ids, self.kept_cache = wanted, None
            if wanted:
                ids = torch.tensor([wanted], device=self.loaded.model.device)
                self.kept_cache = cache_of(self.loaded.model(input_ids=ids, use_cache=True, logits_to_keep=1))
                self.prompt_builds += 1
                self.tokens_fed += len(wanted)
        kept = len(self.kept_ids)
        if self.kept_cache is None or len(context) <= kept or shared_prefix_length([self.kept_ids, context]) < kept:
            return None
        return copy.deepcopy(self.kept_cache)


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
