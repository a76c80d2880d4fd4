"""What the search asks of a model: sampled continuations of a partial answer, with their tokens' log-probs.

A `Generator` answers a list of `Request`s at once (the pending calls of several questions' searches): each
continues ``prompt`` (a row's prompt, rendered by the row's template) followed by ``prefix`` (the partial answer
so far) with ``n`` continuations, reproducibly for its ``seed`` whatever the other requests. The real one
samples with a transformers model (grape.search.hf_generator); tests use a scripted one. A continuation carries
its tokens' end offsets in its text and their log-probs, from which a step's prior P is the exp of its tokens'
mean log-prob (`span_prior`), as the official code takes it from the sampler's log-probs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Protocol

NO_TOKEN_PRIOR = 0.1  # the official code's prior for a step it cannot match to any token


@dataclass(frozen=True)
class Continuation:
    text: str
    finished: bool  # the model ended its answer (sampled its end marker) within the token limit
    token_ends: list[int] = field(default_factory=list)  # each token's end offset in ``text``, increasing
    logprobs: list[float] = field(default_factory=list)  # each token's log-probability under the model

    def __post_init__(self):
        if len(self.token_ends) != len(self.logprobs):
            raise ValueError("one end offset per token log-prob")


@dataclass(frozen=True)
class Request:
    prompt: Any
    prefix: str
    n: int
    seed: int


class Generator(Protocol):
    def sample(self, requests: list[Request]) -> list[list[Continuation]]:
        """For each request, ``n`` continuations of ``prompt`` + ``prefix`` (reproducible for its ``seed``)."""
        ...


def span_prior(continuation: Continuation, start: int, end: int) -> float:
    """exp(mean log-prob) of the tokens that overlap the characters [start, end) of the continuation."""
    chosen, token_start = [], 0
    for token_end, logprob in zip(continuation.token_ends, continuation.logprobs, strict=True):
        if token_start < end and token_end > start:
            chosen.append(logprob)
        token_start = token_end
    if not chosen:
        return NO_TOKEN_PRIOR
    return math.exp(sum(chosen) / len(chosen))
