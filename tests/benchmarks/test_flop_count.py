"""FLOP counts of benchmarks/flop_count.py, against hand-computed values and a brute-force mask count."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from flop_count import (  # noqa: E402
    ModelShape,
    causal_pairs,
    engine_flops,
    forward_flops,
    naive_flops,
    padded_flops,
    shape_of,
)

# 10 body weights, a 100-weight head, 2 layers, query width 3: every term is easy to follow by hand.
SHAPE = ModelShape(body_params=10, head_params=100, layers=2, attention_width=3)


def test_causal_pairs():
    assert [causal_pairs(n) for n in range(5)] == [0, 1, 3, 6, 10]


def test_forward_flops_terms():
    # 2*10*5 matmul weights + 4*2*3*7 attention + 2*100*2 head
    assert forward_flops(SHAPE, tokens=5, attention_pairs=7, head_rows=2) == 100 + 168 + 400


def test_engine_flops_shares_the_prompt():
    # prompt 4, responses 2 and 3: 9 tokens; pairs 10 (prompt) + (2*4 + 3) + (3*4 + 6) = 39; head on 5 rows
    assert engine_flops(SHAPE, 4, [2, 3]) == 2 * 10 * 9 + 4 * 2 * 3 * 39 + 2 * 100 * 5


def test_naive_flops_recomputes_the_prompt_and_heads_every_position():
    # pairs of 6 and 7 tokens: 13 tokens, 21 + 28 causal pairs, head on all 13 positions
    assert naive_flops(SHAPE, 4, [2, 3]) == 2 * 10 * 13 + 4 * 2 * 3 * 49 + 2 * 100 * 13
    # with one response the only difference is the head on the prompt's 4 positions
    assert naive_flops(SHAPE, 4, [2]) - engine_flops(SHAPE, 4, [2]) == 2 * 100 * 4


def test_padded_flops_counts_pad_tokens():
    # batches [6, 7] (both rows 7 wide) and [5]
    seven = 2 * 10 * 7 + 4 * 2 * 3 * 28 + 2 * 100 * 7
    five = 2 * 10 * 5 + 4 * 2 * 3 * 15 + 2 * 100 * 5
    assert padded_flops(SHAPE, [6, 7, 5], batch_size=2) == 2 * seven + five
    assert padded_flops(SHAPE, [6, 7], batch_size=1) == naive_flops(SHAPE, 4, [2, 3])


def test_engine_attention_pairs_equal_a_packed_mask_count():
    """Attention term against the mask itself: [prompt][r1][r2], each response sees the prompt and its own
    causal prefix, nothing of the other response."""
    prompt, responses = 5, [3, 4]
    segment = [0] * prompt + [k + 1 for k, r in enumerate(responses) for _ in range(r)]
    allowed = sum(
        1 for q in range(len(segment)) for key in range(q + 1) if segment[key] == 0 or segment[key] == segment[q]
    )
    attention_only = ModelShape(body_params=0, head_params=0, layers=1, attention_width=1)
    assert engine_flops(attention_only, prompt, responses) == 4 * allowed


def test_shape_of_untied_llama():
    from tiny_models import tiny_llama

    shape = shape_of(tiny_llama(vocab_size=384))
    # per layer: q 32x32, k and v 32x16 (2 KV heads of 8), o 32x32, MLP 3 x 32x64, 2 norms of 32
    per_layer = 1024 + 512 + 512 + 1024 + 3 * 32 * 64 + 2 * 32
    assert shape == ModelShape(body_params=2 * per_layer + 32, head_params=384 * 32, layers=2, attention_width=32)


def test_shape_of_tied_gemma3_uses_head_dim():
    from tiny_models import tiny_gemma3

    shape = shape_of(tiny_gemma3(vocab_size=512))
    # per layer: q 32x64 (4 heads of 16), k and v 32x16, o 64x32, MLP 3 x 32x64, 4 norms of 32, q/k norms of 16
    per_layer = 2048 + 512 + 512 + 2048 + 3 * 32 * 64 + 4 * 32 + 2 * 16
    assert shape.attention_width == 64
    assert shape.head_params == 512 * 32
    assert shape.body_params == 3 * per_layer + 32
    assert shape.layers == 3


@pytest.mark.parametrize("k", [1, 4, 16])
def test_engine_never_does_more_work_than_naive(k):
    assert engine_flops(SHAPE, 256, [64] * k) < naive_flops(SHAPE, 256, [64] * k)
