"""A causal LM as the decoder uses it: the next-token log-probs after a growing prefix, and continuations of
that prefix by several rows at once (rollouts, best-of-n samples).

Two implementations with one interface:
- `CachedLM` keeps the prefix's KV cache across steps (one token's work per committed token), and starts the
  B rows of a rollout from a copy of that cache expanded to B rows: the prefix is never computed again.
- `PlainLM` recomputes: a full forward pass over the prefix at every step, and each rollout row is generated
  by transformers' ``generate`` from the whole prefix (what the released Transfer Q* code does). It is the
  reference the cached path must equal, and the baseline of benchmarks/decode_speed.py.

Row semantics (both): a row is its first token followed by at most ``steps`` more; it stops at its first end
token (kept, ``ended``). ``logprob`` sums log π(token) at temperature 1 over the row's tokens after the first.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from transformers import GenerationConfig

from grape.models.kv_cache import cache_keyword, cache_of


@dataclass
class Rows:
    tokens: list[list[int]]  # per row: the first token, then its continuation (the end token included)
    ended: list[bool]  # the row stopped at an end token
    logprobs: list[float]  # per row: Σ log π(token) of the continuation (not of the first token)


class CachedLM:
    """Next-token log-probs after a prefix whose KV cache is kept across steps."""

    def __init__(self, model: Any, end_ids: set[int]):
        self.model, self.end_ids = model, sorted(end_ids)
        self.keyword = cache_keyword(model)
        self.device = next(model.parameters()).device
        self.tokens_fed = 0  # every token position this model computed (the work the cache saves)
        self.cache: Any = None
        self._logprobs: torch.Tensor | None = None

    def start(self, ids: list[int]) -> None:
        self.cache = None
        self._logprobs = self._forward(torch.tensor([ids], device=self.device))[0]

    def append(self, token: int) -> None:
        self._logprobs = self._forward(torch.tensor([[token]], device=self.device))[0]

    def next_logprobs(self) -> torch.Tensor:
        """[V] float32 log π(· | prefix)."""
        return self._logprobs

    @torch.inference_mode()
    def continue_rows(self, first: torch.Tensor, steps: int, temperature: float, generator: Any) -> Rows:
        """Continue the prefix by each of ``first`` ([B] token ids) and ``steps`` more tokens per row."""
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(len(first))
        out = _RowState(first.tolist(), set(self.end_ids))
        token = first.to(self.device)
        for _ in range(steps):
            if out.all_ended():
                break
            logprobs = self._forward(token[:, None], cache)
            token = pick(logprobs, temperature, generator)
            out.add(token.tolist(), logprobs.gather(1, token[:, None]).squeeze(1).tolist())
        return out.rows()

    @torch.inference_mode()
    def _forward(self, ids: torch.Tensor, cache: Any = None) -> torch.Tensor:
        """[B, V] float32 log-probs after the last of ``ids`` ([B, L]), continuing ``cache`` (own prefix: None)."""
        own = cache is None
        out = self.model(input_ids=ids, use_cache=True, logits_to_keep=1,
                         **{self.keyword: self.cache if own else cache})  # fmt: skip
        if own:
            self.cache = cache_of(out)
        self.tokens_fed += ids.numel()
        return torch.log_softmax(out.logits[:, -1].float(), dim=-1)


class PlainLM:
    """The same interface, recomputing every prefix (no cache across steps, none shared between rows)."""

    def __init__(self, model: Any, end_ids: set[int], pad_id: int):
        self.model, self.end_ids, self.pad_id = model, sorted(end_ids), pad_id
        self.device = next(model.parameters()).device
        self.tokens_fed = 0
        self.ids: list[int] = []

    def start(self, ids: list[int]) -> None:
        self.ids = list(ids)

    def append(self, token: int) -> None:
        self.ids.append(token)

    @torch.inference_mode()
    def next_logprobs(self) -> torch.Tensor:
        self.tokens_fed += len(self.ids)
        logits = self.model(input_ids=torch.tensor([self.ids], device=self.device), use_cache=False).logits
        return torch.log_softmax(logits[0, -1].float(), dim=-1)

    @torch.inference_mode()
    def continue_rows(self, first: torch.Tensor, steps: int, temperature: float, generator: Any) -> Rows:
        rows = torch.tensor([[*self.ids, t] for t in first.tolist()], device=self.device)
        out = _RowState(first.tolist(), set(self.end_ids))
        if steps == 0:
            return out.rows()
        if temperature > 0:  # transformers samples from the global generator: seed it from the caller's
            torch.manual_seed(int(torch.randint(0, 2**62, (1,), generator=generator).item()))
        config = GenerationConfig(  # explicit: none of the model's own generation defaults (penalties, top-p)
            max_new_tokens=steps, do_sample=temperature > 0, temperature=temperature or None, top_k=None,
            top_p=None, eos_token_id=self.end_ids, pad_token_id=self.pad_id, return_dict_in_generate=True,
            output_logits=True,
        )  # fmt: skip
        generated = self.model.generate(input_ids=rows, attention_mask=torch.ones_like(rows), generation_config=config)
        self.tokens_fed += rows.numel() + len(first) * (len(generated.logits) - 1)
        new = generated.sequences[:, rows.shape[1] :]
        for step, logits in enumerate(generated.logits):
            token = new[:, step]
            logprobs = torch.log_softmax(logits.float(), dim=-1).gather(1, token[:, None]).squeeze(1)
            out.add(token.tolist(), logprobs.tolist())
        return out.rows()


def pick(logprobs: torch.Tensor, temperature: float, generator: Any) -> torch.Tensor:
    """[B] the next token of each row: argmax (temperature 0) or a draw from softmax(logits / T)."""
    if temperature == 0:
        return logprobs.argmax(dim=-1)
    probabilities = torch.softmax(logprobs / temperature, dim=-1)
    return torch.multinomial(probabilities, 1, generator=generator).squeeze(1)


class _RowState:
    """The rows as they grow: tokens after an end token are dropped, the end token is kept."""

    def __init__(self, first: list[int], end_ids: set[int]):
        self.end_ids = end_ids
        self.tokens = [[t] for t in first]
        self.ended = [t in end_ids for t in first]
        self.logprobs = [0.0] * len(first)

    def add(self, tokens: list[int], logprobs: list[float]) -> None:
        for row, (token, logprob) in enumerate(zip(tokens, logprobs, strict=True)):
            if not self.ended[row]:
                self.tokens[row].append(token)
                self.logprobs[row] += logprob
                self.ended[row] = token in self.end_ids

    def all_ended(self) -> bool:
        return all(self.ended)

    def rows(self) -> Rows:
        return Rows(self.tokens, self.ended, self.logprobs)
