"""The fold benchmarks/fold_speed.py times against grape's running passes (each tile's log-sum-exp from one
log-softmax) computes the same log-sum-exp, and its switch reaches the scoring engine's calls."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import fold_speed as bench  # noqa: E402

from grape.models import logprobs  # noqa: E402


@pytest.mark.parametrize("tile", [1, 7, 50, 64])
@pytest.mark.parametrize("head", [(None, None, 1.0), ("bias", 4.0, 0.5)])
def test_the_log_softmax_fold_and_grapes_give_the_same_log_sum_exp(tile, head):
    generator = torch.Generator().manual_seed(0)
    rows, weight = torch.randn(9, 8, generator=generator), torch.randn(50, 8, generator=generator) * 3
    bias = torch.randn(50, generator=generator) if head[0] == "bias" else None
    head = (bias, *head[1:])
    logits = torch.nn.functional.linear(rows, weight, bias) * head[2]
    if head[1] is not None:
        logits = head[1] * torch.tanh(logits / head[1])
    expected = torch.logsumexp(logits.double(), -1).float()
    for slice_rows in (None, 1, 4, 9, 20):
        ours = bench.logsumexp_by_log_softmax(rows, weight, head, tile, slice_rows)
        torch.testing.assert_close(ours, expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(logprobs._logsumexp_by_tiles(rows, weight, head, tile), expected, rtol=0, atol=1e-5)


@pytest.mark.parametrize("head", [(None, None, 1.0), ("bias", 4.0, 0.5)])
def test_in_bfloat16_both_folds_reduce_the_same_logits_in_float32(head):
    """The GPU's case: bf16 rows and head, the tile's logits in bf16, each fold's reduction (and any bias or soft-cap)
    in float32."""
    generator = torch.Generator().manual_seed(1)
    rows = torch.randn(6, 16, generator=generator).bfloat16()
    weight = torch.randn(90, 16, generator=generator).bfloat16()
    bias = torch.randn(90, generator=generator).bfloat16() if head[0] == "bias" else None
    head = (bias, *head[1:])
    for tile, slice_rows in ((32, None), (90, None), (32, 4)):
        ours = bench.logsumexp_by_log_softmax(rows, weight, head, tile, slice_rows)
        assert ours.dtype == torch.float32
        torch.testing.assert_close(ours, logprobs._logsumexp_by_tiles(rows, weight, head, tile), rtol=0, atol=1e-5)


def test_log_softmax_fold_swaps_the_fold_token_logprobs_uses_and_restores_it():
    grape_fold = logprobs._logsumexp_by_tiles
    calls = []

    def counting(*args):
        calls.append(args[3])
        return bench.logsumexp_by_log_softmax(*args)

    with bench.log_softmax_fold(slice_rows=1):
        assert logprobs._logsumexp_by_tiles.func is bench.logsumexp_by_log_softmax
        assert logprobs._logsumexp_by_tiles.keywords == {"slice_rows": 1}
        logprobs._logsumexp_by_tiles = counting
        out = logprobs.token_logprobs(torch.ones(2, 3), torch.eye(3), torch.tensor([0, 1]), vocab_tile=2)
    assert logprobs._logsumexp_by_tiles is grape_fold and calls == [2]
    torch.testing.assert_close(out, torch.full((2,), -math.log(3)))  # equal logits: uniform
