"""The packed layout's attention rule in its two forms: the dense SDPA mask and the FlexAttention block mask give
the same attention; the block mask skips what nobody sees; the model's own attention comes back after."""

import random

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_llama

from grape.scoring.attention_masks import (
    flex_attention,
    packed_attention_mask,
    packed_block_mask,
    packed_flex_forward,
    packed_sees,
)
from grape.scoring.packing import TokenGroup, build_batch


def reference_sees(segment, branch, position, window, b, q, k) -> bool:
    """The rule written out for one (row, query, key), from the layout's definition."""
    if segment[b][q] < 0:
        return q == k  # padding sees itself only
    same_group = segment[b][q] == segment[b][k]
    prompt_or_own = branch[b][k] == 0 or branch[b][k] == branch[b][q]
    in_window = window is None or position[b][q] - position[b][k] < window
    return same_group and k <= q and prompt_or_own and in_window


def packed(seed: int, rows: int = 3):
    rng = random.Random(seed)
    groups = [TokenGroup([rng.randrange(9) for _ in range(rng.randint(1, 40))],
                         [[1] * rng.randint(1, 30) for _ in range(rng.randint(1, 5))]) for _ in range(7)]  # fmt: skip
    layout = [list(range(g, 7, rows)) for g in range(rows)]
    return build_batch(groups, layout)


@pytest.mark.parametrize("window", [None, 5])
def test_the_rule_and_the_dense_mask_match_the_written_out_rule(window):
    batch = packed(seed=1)
    segment, branch, position = batch.segment, batch.branch, batch.position_ids
    mask = packed_attention_mask(segment, branch, position, window)[:, 0]
    rows, t = segment.shape
    seg, br, pos = segment.tolist(), branch.tolist(), position.tolist()
    expected = [[[reference_sees(seg, br, pos, window, b, q, k) for k in range(t)] for q in range(t)]
                for b in range(rows)]  # fmt: skip
    assert mask.tolist() == expected
    sees = packed_sees(segment, branch, position, window)
    assert bool(sees(torch.tensor(1), torch.tensor(t - 1), torch.tensor(0))) == expected[1][t - 1][0]  # scalar indices


@pytest.mark.parametrize(
    ("heads", "kv_heads", "window", "softcap"), [(4, 1, None, None), (4, 2, 6, None), (2, 2, None, 5.0)]
)
def test_flex_attention_over_the_block_mask_equals_sdpa_over_the_dense_mask(heads, kv_heads, window, softcap):
    batch = packed(seed=2)
    segment, branch, position = batch.segment, batch.branch, batch.position_ids
    rows, t = segment.shape
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(rows, heads, t, 16, generator=generator)
    key, value = (torch.randn(rows, kv_heads, t, 16, generator=generator) for _ in range(2))
    out, _ = packed_flex_forward(None, query, key, value, packed_block_mask(segment, branch, position, window),
                                 scaling=0.25, softcap=softcap)  # fmt: skip
    mask = packed_attention_mask(segment, branch, position, window)
    k, v = key.repeat_interleave(heads // kv_heads, 1), value.repeat_interleave(heads // kv_heads, 1)
    scores = query @ k.transpose(-1, -2) * 0.25
    if softcap:
        scores = softcap * torch.tanh(scores / softcap)
    reference = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1) @ v
    assert out.shape == (rows, t, heads, 16)
    assert torch.allclose(out, reference.transpose(1, 2), atol=1e-5)
    if softcap is None:
        sdpa = F.scaled_dot_product_attention(query, k, v, attn_mask=mask, scale=0.25)
        assert torch.allclose(out, sdpa.transpose(1, 2), atol=1e-5)


@pytest.mark.parametrize("window", [None, 6])
def test_compiled_flex_attention_lowers_the_rule(window):
    """The GPU runs FlexAttention compiled, which lowers the rule as a pointwise subgraph (no in-place ops there:
    an in-place `&=` once failed every GPU flex run). Inductor's CPU kernel lowers it the same way; it must equal
    the eager form."""
    from torch.nn.attention.flex_attention import flex_attention as flex

    batch = packed(seed=3, rows=2)
    block_mask = packed_block_mask(batch.segment, batch.branch, batch.position_ids, window)
    rows, t = batch.segment.shape
    generator = torch.Generator().manual_seed(1)
    query = torch.randn(rows, 4, t, 16, generator=generator)
    key, value = (torch.randn(rows, 2, t, 16, generator=generator) for _ in range(2))
    compiled = torch.compile(flex, dynamic=False)(query, key, value, block_mask=block_mask, enable_gqa=True)
    eager, _ = packed_flex_forward(None, query, key, value, block_mask)
    assert torch.allclose(compiled.transpose(1, 2), eager, atol=1e-5)


def test_block_mask_skips_the_blocks_of_other_groups():
    """Eight groups of 128 prompt + 2 x 64 response tokens in one 2,048-token row: a query block sees its own
    group's blocks only, so most of the square is skipped (a dense mask computes all of it)."""
    groups = [TokenGroup([3] * 128, [[4] * 64, [5] * 64]) for _ in range(8)]
    batch = build_batch(groups, [list(range(8))])
    block_mask = packed_block_mask(batch.segment, batch.branch, batch.position_ids)
    assert batch.segment.shape == (1, 2048)
    assert block_mask.sparsity() > 85.0  # percent of 128 x 128 blocks skipped (causal alone: ~47%)


def test_flex_attention_restores_the_models_own_implementation():
    model = tiny_llama()
    with flex_attention(model):
        assert model.config._attn_implementation == "grape_packed_flex"
    assert model.config._attn_implementation == "sdpa"
    with pytest.raises(RuntimeError, match="inside"), flex_attention(model):
        raise RuntimeError("inside")
    assert model.config._attn_implementation == "sdpa"
