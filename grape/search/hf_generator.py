"""The search's generator on a transformers model: sampled continuations of partial answers, several questions'
at once.

The ids the model continues are the text's tokens. Without a partial answer they are the row prompt's
generation ids (`Renderer.generation_ids`: with ``paper``, ``…Answer:``, the model writing the space itself).
With one, they are the whole text ``prompt + partial answer`` tokenised at once (`Renderer.encode`), never the
ids of the pieces joined: a step cut inside a token (``city=`` of ``city='``) is continued from the tokens
the tokenizer gives that text, exactly as the pairs made from it are trained (grape.training.preference). The
sampled ids are appended as they are within one continuation; its text is what they decode to after the
partial answer's own ids (decoding the new ids alone would drop a SentencePiece word's leading space).

A continuation's log-probs are the model's own (temperature 1, from the raw logits), whatever temperature it
was sampled at: they make the steps' priors P. Each continuation draws from its own random stream (its call's
seed and its place in the call, grape.search.row_sampling), so it samples the same tokens alone or beside other
questions' rows.

**Each prompt is computed once.** A search asks for up to 10 continuations of one prompt (5 expansions, 5
rollouts), and tool-calling prompts are long (the tool documentation: BFCL's live_multiple prompts run 182–3,971
tokens, median 750) while a continuation is ≤ 50 tokens. The generator keeps the KV cache of each current
prompt's generation ids but the last (the prompts of the latest call's requests); a request continues a copy of
it, computing only the ids after it once, then expands it to its ``n`` rows. A request whose context does not
start with the kept ids (a tokenizer that merges the prompt's last token with the partial answer) is computed
from scratch. ``prompt_cache=False`` is that reference (tests/search/test_hf_generator.py).

**The requests of one call decode as one batch**, their rows' caches padded on the left to one width
(grape.models.padded_cache), each row at its own positions, a row dropped when it ends: on a CPU a decoding
step of 12 rows costs about twice one of 3 (SmolLM2: the weights are streamed once a step whatever the rows),
and four BFCL questions searched together took 1.83× less time per question than one at a time
(docs/performance.md). Models with sliding-window layers (Gemma 3) keep a window of their own that padding
would shift: there each request decodes as its own batch.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from grape.models.kv_cache import cache_keyword, cache_of, shared_prefix_length
from grape.models.load import LoadedModel
from grape.models.padded_cache import joined, mergeable, selected, trimmed, with_room
from grape.search.generator import Continuation, Request
from grape.search.row_sampling import next_exponentials, row_stream, sampled_tokens
from grape.text import Renderer


class HFGenerator:
    def __init__(self, loaded: LoadedModel, renderer: Renderer, max_new_tokens: int, temperature: float,
                 prompt_cache: bool = True):  # fmt: skip
        self.loaded, self.renderer = loaded, renderer
        self.tokenizer = loaded.tokenizer
        self.max_new_tokens, self.temperature = max_new_tokens, temperature
        self.end_ids = end_token_ids(loaded, renderer)
        self.prompt_cache = prompt_cache
        self.keyword = cache_keyword(loaded.model)
        self.kept: dict[tuple[int, ...], Any] = {}  # the latest call's prompts' caches, by their ids
        self.prompt_builds = 0  # how many prompts' caches were computed
        self.tokens_fed = 0  # context positions the model computed (a kept prompt once, then each request's rest)
        self.batches = 0  # decoding batches run

    def context_ids(self, prompt: Any, prefix: str) -> tuple[list[int], list[int]]:
        """(the ids the model continues, the partial answer's ids at their end)."""
        if not prefix:
            return self.renderer.generation_ids(prompt), []
        encoded = self.renderer.encode(prompt, [prefix])[0]
        return encoded.prompt + encoded.response, encoded.response

    @torch.inference_mode()
    def sample(self, requests: list[Request]) -> list[list[Continuation]]:
        """Each request's ``n`` continuations: the requests decode as one batch where the cache allows it."""
        if not requests:
            return []
        contexts = [self.context_ids(r.prompt, r.prefix) for r in requests]
        wanted = [self._kept_ids(r.prompt) for r in requests]
        self.kept = {ids: cache for ids, cache in self.kept.items() if ids in wanted}
        started = [
            self._started(ids, context, r.n) for ids, (context, _), r in zip(wanted, contexts, requests, strict=True)
        ]
        together = all(mergeable(cache) for cache, _ in started)
        groups = [list(range(len(requests)))] if together else [[i] for i in range(len(requests))]
        sampled: list[list[tuple[list[int], list[float]]]] = [[] for _ in requests]
        for group in groups:
            cache = mask = None
            for i in group:
                rows = torch.ones(requests[i].n, len(contexts[i][0]), dtype=torch.long, device=self.loaded.device)
                cache, mask = joined(cache, mask, started[i][0], rows)
            cache = with_room(cache)  # a decoding step writes its column in place
            owners = [i for i in group for _ in range(requests[i].n)]
            streams = [row_stream(requests[i].seed, j) for i in group for j in range(requests[i].n)]
            logits = torch.cat([started[i][1] for i in group])
            lengths = [len(contexts[i][0]) for i in owners]
            for owner, row in zip(owners, self._decode(cache, mask, logits, lengths, streams), strict=True):
                sampled[owner].append(row)
        return [[self._continuation(ids, scores, context[1], r.prefix) for ids, scores in rows]
                for rows, context, r in zip(sampled, contexts, requests, strict=True)]  # fmt: skip

    def _kept_ids(self, prompt: Any) -> tuple[int, ...]:
        """The ids of ``prompt`` whose cache is kept: its generation ids but the last (none without the cache)."""
        return tuple(self.renderer.generation_ids(prompt)[:-1]) if self.prompt_cache else ()

    def _started(self, kept_ids: tuple[int, ...], context: list[int], n: int) -> tuple[Any, torch.Tensor]:
        """The cache of ``context`` expanded to ``n`` rows, and the next token's logits [n, V]: the ids after the
        prompt's kept cache computed on a copy of it (the whole context when it does not start with them)."""
        model, device = self.loaded.model, self.loaded.device
        if kept_ids and kept_ids not in self.kept:
            ids = torch.tensor([kept_ids], device=device)
            self.kept[kept_ids] = cache_of(model(input_ids=ids, use_cache=True, logits_to_keep=1))
            self.prompt_builds += 1
            self.tokens_fed += len(kept_ids)
        usable = bool(kept_ids) and len(context) > len(kept_ids) and \
            shared_prefix_length([list(kept_ids), context]) == len(kept_ids)  # fmt: skip
        extra = {self.keyword: copy.deepcopy(self.kept[kept_ids])} if usable else {}
        rest = context[len(kept_ids) :] if usable else context
        output = model(input_ids=torch.tensor([rest], device=device), use_cache=True, logits_to_keep=1, **extra)
        self.tokens_fed += len(rest)
        cache = cache_of(output)
        cache.batch_repeat_interleave(n)
        return cache, output.logits[:, -1].expand(n, -1)

    def _decode(self, cache: Any, mask: torch.Tensor, logits: torch.Tensor, lengths: list[int],
                streams: list[Any]) -> list[tuple[list[int], list[float]]]:  # fmt: skip
        """Each row's sampled ids (an ending one included) and their log-probs, from the rows' cache, [B, W] mask,
        next-token logits [B, V] and real lengths; a row stops at an end id or after ``max_new_tokens``."""
        self.batches += 1
        model, device = self.loaded.model, self.loaded.device
        rows = list(range(len(streams)))  # the rows still decoding
        tokens: list[list[int]] = [[] for _ in streams]
        scores: list[list[float]] = [[] for _ in streams]
        positions = torch.tensor(lengths, device=device)
        for _ in range(self.max_new_tokens):
            noise = next_exponentials([streams[r] for r in rows], logits.shape[-1])
            chosen = sampled_tokens(logits, noise, self.temperature)
            logprobs = torch.log_softmax(logits.float(), dim=-1).gather(1, chosen[:, None]).squeeze(1)
            going = []
            for place, (row, token, logprob) in enumerate(zip(rows, chosen.tolist(), logprobs.tolist(), strict=True)):
                tokens[row].append(token)
                scores[row].append(logprob)
                if token not in self.end_ids and len(tokens[row]) < self.max_new_tokens:
                    going.append(place)
            if not going:
                break
            if len(going) < len(rows):
                index = torch.tensor(going, device=device)
                cache, mask = trimmed(selected(cache, index), mask[index])
                rows, chosen, positions = [rows[p] for p in going], chosen[index], positions[index]
            mask = torch.cat([mask, mask.new_ones(len(rows), 1)], dim=1)
            output = model(input_ids=chosen[:, None], attention_mask=mask, position_ids=positions[:, None],
                           use_cache=True, **{self.keyword: cache})  # fmt: skip
            cache, logits, positions = cache_of(output), output.logits[:, -1], positions + 1
        return list(zip(tokens, scores, strict=True))

    def _continuation(self, ids: list[int], scores: list[float], head: list[int], prefix: str) -> Continuation:
        """The continuation ``ids`` (an ending end id dropped) make after the partial answer's ids ``head``."""
        end = next((i for i, t in enumerate(ids) if t in self.end_ids), None)
        kept = ids if end is None else ids[:end]
        text, ends = decoded_after(self.tokenizer, head, kept)
        if not prefix:  # the answer's leading whitespace belongs to the prompt's end (grape.text)
            lead = len(text) - len(text.lstrip())
            text, ends = text[lead:], [max(0, e - lead) for e in ends]
        return Continuation(text, end is not None, ends, scores[: len(kept)])


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
