"""Packed attention by two variable-length calls (grape/scoring/varlen_attention.py) against attention under the
packed layout's dense mask, written out independently; its parts against simple references."""

import pytest
import torch
from reference import naive_sum_logprob
from tiny_models import tiny_gemma3, tiny_llama

from grape.scoring import varlen_attention
from grape.scoring.attention_masks import packed_attention_mask
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup, build_batch
from grape.scoring.varlen_attention import (
    covers,
    flash_runs,
    packed_varlen_forward,
    reference_varlen,
    varlen_layout,
)

GROUPS = [
    TokenGroup([5, 6, 7], [[8, 9], [10], [11, 12, 13]]),
    TokenGroup([14] * 6, [[15] * 4]),
    TokenGroup([16, 17], [[18], [19, 20]]),
    TokenGroup([21], [[22, 23]]),
]


def batch_of(groups, rows):
    return build_batch(groups, rows)


def test_layout_units_runs_and_who_sees_the_prompt():
    batch = batch_of(GROUPS, [[0, 3], [1, 2]])  # row 0: 9 + 3 tokens; row 1: 10 + 5 tokens, padded to 15
    t = batch.segment.shape[1]
    layout = varlen_layout(batch.segment, batch.branch)
    assert t == 15
    assert layout.unit_starts.tolist() == [0, 9, 12, 15, 25, 30]  # 0's, 3's, row 0's padding, 1's, 2's
    assert layout.unit_keys.tolist() == [3, 1, 3, 6, 2]  # prompts; the padding sees all of itself
    assert layout.run_starts.tolist() == [0, 3, 5, 6, 9, 10, 12, 15, 21, 25, 27, 28, 30]
    expected = [0] * 3 + [1] * 6 + [0, 1, 1] + [0] * 3 + [0] * 6 + [1] * 4 + [0] * 2 + [1] * 3
    assert layout.sees_prompt.int().tolist() == expected
    assert (layout.longest_unit, layout.longest_run) == (10, 6)
    assert layout.unit_starts.dtype == layout.run_starts.dtype == layout.unit_keys.dtype == torch.int32


def masked_attention(query, key, value, mask, scale):
    """[B, H, T, D] attention under a [B, 1, T, T] boolean mask, keys repeated to the query heads, float64."""
    groups = query.shape[1] // key.shape[1]
    k, v = key.repeat_interleave(groups, 1).double(), value.repeat_interleave(groups, 1).double()
    scores = (query.double() @ k.transpose(-1, -2) * scale).masked_fill(~mask, float("-inf"))
    return (scores.softmax(-1) @ v).transpose(1, 2)  # [B, T, H, D]


@pytest.mark.parametrize("kv_heads", [1, 2, 4])
def test_two_calls_equal_attention_under_the_packed_mask(kv_heads):
    batch = batch_of(GROUPS, [[0, 3], [1, 2]])
    b, t = batch.segment.shape
    torch.manual_seed(kv_heads)
    query, key, value = torch.randn(b, 4, t, 8), torch.randn(b, kv_heads, t, 8), torch.randn(b, kv_heads, t, 8)
    layout = varlen_layout(batch.segment, batch.branch).attention_kwargs(lambda x: x)
    out, _ = packed_varlen_forward(None, query, key, value, None, scaling=0.3, **layout)
    mask = packed_attention_mask(batch.segment, batch.branch, batch.position_ids)
    expected = masked_attention(query, key, value, mask, 0.3)
    real = batch.segment >= 0  # padding attends within its run here, to itself alone under the mask
    assert out.shape == (b, t, 4, 8)
    assert torch.allclose(out[real].double(), expected[real], atol=1e-5)


def test_reference_kernel_keys_used_causal_and_empty_sequences():
    torch.manual_seed(1)
    q, k, v = torch.randn(7, 2, 4), torch.randn(7, 1, 4), torch.randn(7, 1, 4)
    starts = torch.tensor([0, 3, 3, 7], dtype=torch.int32)  # an empty sequence in the middle
    out, lse = reference_varlen(q, k, v, starts, 4, causal=False, scale=0.5, keys_used=torch.tensor([2, 0, 0]))
    scores = torch.einsum("nhd,kd->hnk", q[:3], k[:2, 0]) * 0.5
    assert torch.allclose(out[:3], torch.einsum("hnk,kd->nhd", scores.softmax(-1), v[:2, 0]), atol=1e-6)
    assert torch.allclose(lse[:, :3], scores.logsumexp(-1))
    assert torch.equal(out[3:], torch.zeros(4, 2, 4)) and torch.isinf(lse[:, 3:]).all()  # no key: 0 and -inf
    out, lse = reference_varlen(q, k, v, starts, 4, causal=True, scale=0.5)
    last = torch.einsum("hd,kd->hk", q[6], k[3:7, 0]) * 0.5
    first = q[3] @ k[3, 0] * 0.5
    assert torch.allclose(out[6], last.softmax(-1) @ v[3:7, 0], atol=1e-6)
    assert torch.allclose(out[3], v[3, 0].expand(2, 4)) and torch.allclose(lse[:, 3], first)


def test_covers_only_unbound_windows_and_no_softcap():
    positions = torch.tensor([[0, 1, 2, 7]])
    assert covers(positions, {"full_attention": None}, None)
    assert covers(positions, {"full_attention": None, "sliding_attention": 8}, None)
    assert not covers(positions, {"full_attention": None, "sliding_attention": 7}, None)
    assert not covers(positions, {"full_attention": None}, 50.0)


def test_flash_runs_only_where_its_kernel_takes_the_queries():
    assert flash_runs("cuda", torch.bfloat16, 128) and flash_runs("cuda", torch.float16, 256)
    assert not flash_runs("cuda", torch.float32, 128)  # the engine takes the mask there
    assert not flash_runs("cuda", torch.bfloat16, 12) and not flash_runs("cuda", torch.bfloat16, 512)
    assert not flash_runs("cpu", torch.bfloat16, 128)  # the reference runs there


@pytest.mark.parametrize("make", [tiny_llama, lambda: tiny_gemma3(sliding_window=512)], ids=["llama", "gemma3"])
def test_engine_attends_by_the_two_calls_and_matches_the_reference(make, monkeypatch):
    """Every layer of every batch takes the two calls (no mask built) and the scores equal the naive reference;
    the model's own implementation comes back after."""
    calls = []
    original = varlen_attention.reference_varlen
    monkeypatch.setattr(varlen_attention, "_eager_reference", lambda *a, **k: calls.append(1) or original(*a, **k))
    monkeypatch.setattr("grape.scoring.engine.packed_attention_mask", None)  # calling it would fail
    model = make()
    groups = [TokenGroup([3 + i, 4, 5, 6][: 1 + i % 4], [[7, 8 + i], [9] * (1 + i), [10, 11, 12]]) for i in range(6)]
    results = ScoringEngine(model, EngineSettings(64, 32, attention="varlen")).score(groups)
    assert len(calls) >= 2 * model.config.num_hidden_layers
    assert model.config._attn_implementation == "sdpa"
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            reference = naive_sum_logprob(model, group.prompt, response)
            assert abs(reference - result.sum_logprob[k]) / len(response) < 1e-4


def test_engine_uses_the_mask_where_a_window_binds(monkeypatch):
    monkeypatch.setattr(varlen_attention, "_eager_reference", None)  # calling it would fail
    model = tiny_gemma3(sliding_window=4)
    groups = [TokenGroup([5] * 6, [[6, 7, 8], [9]])]
    result = ScoringEngine(model, EngineSettings(64, 32, attention="varlen")).score(groups)[0]
    reference = naive_sum_logprob(model, groups[0].prompt, groups[0].responses[0])
    assert abs(reference - result.sum_logprob[0]) / 3 < 1e-4
