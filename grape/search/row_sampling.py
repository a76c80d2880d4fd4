"""Sampling where each row draws from its own random stream, so that what a row samples does not depend on which
other rows share its batch.

The search samples several questions' continuations as one batch (grape.search.hf_generator). With one global
generator (``torch.manual_seed`` then ``torch.multinomial``) a row's tokens would depend on the rows beside it,
and a question's search on which questions ran with it. Here the ``j``-th continuation of a call with seed ``s``
has its own stream (`row_stream`), which gives one exponential number E_i per vocabulary entry and token, and
the token drawn is argmax_i (logit_i / temperature − log E_i) (`sampled_tokens`): the exponential race, or
Gumbel-max trick, whose winner follows softmax(logits / temperature) exactly.

Why not inverse-CDF sampling (one uniform number per token)? The logits of a row differ by ~1e-5 between batch
shapes in float32, and at temperature 1.5 the search often draws from the tail, where thousands of tokens have
intervals of the cumulative distribution ~1e-7 wide: a rounding shift moves the draw to another token (3 of 600
draws on BFCL prompts with SmolLM2). The race's winner changes only when the two best scores lie within the
rounding of each other, about once in 10^5 draws.

The cost: ``V`` exponential numbers a row and token, drawn by numpy on the CPU (~0.3 ms for SmolLM2's 49k
entries, ~1.5 ms for Gemma's 262k): small beside a decoding step on a CPU, not beside one on a GPU.
"""

from __future__ import annotations

import hashlib

import numpy as np
import torch

TINY = np.finfo(np.float64).tiny  # an exponential number of 0 (probability 2^-53) would win at any logit


def row_stream(seed: int, row: int) -> np.random.Generator:
    """The random stream of the ``row``-th continuation of a call with ``seed`` (numpy's PCG64: fast exponentials,
    the same on every machine and device)."""
    digest = hashlib.sha256(f"{seed}:{row}".encode()).digest()
    return np.random.Generator(np.random.PCG64(int.from_bytes(digest[:8], "big")))


def next_exponentials(streams: list[np.random.Generator], vocab: int) -> torch.Tensor:
    """[B, vocab] float64: the next ``vocab`` standard exponential numbers of each stream."""
    return torch.from_numpy(np.stack([stream.standard_exponential(vocab) for stream in streams]))


def sampled_tokens(logits: torch.Tensor, exponentials: torch.Tensor, temperature: float) -> torch.Tensor:
    """[B] long: for each row of ``logits`` [B, V], argmax_i (logits_i / temperature − log exponentials_i), with
    ``exponentials`` [B, V] standard exponential numbers: a draw from softmax(logits / temperature). A token of
    logit −inf is never drawn. Computed in float64."""
    scores = logits.double() / temperature - exponentials.to(logits.device).clamp(min=TINY).log()
    return scores.argmax(dim=-1)
