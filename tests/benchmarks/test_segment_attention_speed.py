"""The alternatives that benchmarks/segment_attention_speed.py times against grape's segment attention compute the
same attention: by blocks of matrix products against SDPA over each run's keys with its mask (blocks of 1, 3 and
64 queries, sliding windows, 1, 2 and 4 query heads per key head), every method on the benchmark's layout against
the per-run path, and the path switch reaches the engine's attention."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import segment_attention_speed as bench  # noqa: E402

from grape.models.segment_attention import plan_runs, run_mask  # noqa: E402


@pytest.mark.parametrize("block", [1, 3, 64])
@pytest.mark.parametrize("window", [None, 4])
@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 1), (4, 2), (3, 3)])
def test_attention_by_blocks_equals_sdpa_on_each_runs_keys(block, window, heads, kv_heads):
    """A prompt of 7 with responses of 9, 1 and 5, then a new example of 6; queries laid out as transformers'
    projections leave them ([T, H, D] in memory, seen as [H, T, D])."""
    generator = torch.Generator().manual_seed(2)
    positions = torch.tensor([*range(16), *range(7, 8), *range(7, 12), *range(6)])
    t, dim = positions.shape[0], 8
    query = torch.randn(t, heads, dim, generator=generator).transpose(0, 1)
    key, value = (torch.randn(kv_heads, t, dim, generator=generator) for _ in range(2))
    out = torch.full((t, heads, dim), float("nan"))
    runs = plan_runs(positions)
    assert [r.prefix for r in runs] == [0, 7, 7, 0]
    for run in runs:
        bench.attend_by_blocks(query, key, value, run, window, 0.3, out, block)
    repeat = heads // kv_heads
    for run in runs:
        own = slice(run.start, run.end)
        seen = [*range(run.prefix_start, run.prefix_start + run.prefix), *range(run.start, run.end)]
        keys, values = key[:, seen].repeat_interleave(repeat, 0), value[:, seen].repeat_interleave(repeat, 0)
        mask = run_mask(run.end - run.start, run.prefix, window, torch.device("cpu"))
        expected = F.scaled_dot_product_attention(query[:, own], keys, values, attn_mask=mask, scale=0.3)
        torch.testing.assert_close(out[own], expected.transpose(0, 1), atol=1e-5, rtol=1e-5)


def test_every_method_equals_grapes_attention_on_the_benchmark_layout():
    positions = bench.packed_positions(groups=2, k=3, prompt=20, low=4, high=9, seed=0)
    t = positions.shape[1]
    q = torch.randn(1, t, bench.HEADS, bench.HEAD_DIM).transpose(1, 2)
    k, v = (torch.randn(1, t, 1, bench.HEAD_DIM).transpose(1, 2) for _ in range(2))
    reference = bench.per_run(q, k, v, positions)
    for method in (bench.grape, bench.blocks, bench.gqa):
        torch.testing.assert_close(method(q, k, v, positions), reference, atol=1e-5, rtol=1e-5)


def test_the_path_switch_reaches_a_models_packed_attention_and_comes_back():
    from tiny_models import tiny_llama

    from grape.models import segment_attention
    from grape.models.segment_attention import packed_attention

    model, calls = tiny_llama(vocab_size=64), []

    def counting(*args, **kwargs):
        calls.append(1)
        return bench.per_run_forward(*args, **kwargs)

    ids, positions = torch.randint(3, 64, (1, 9)), torch.tensor([[0, 1, 2, 3, 4, 3, 4, 0, 1]])
    with torch.no_grad(), packed_attention(model):
        grapes = model(input_ids=ids, position_ids=positions, use_cache=False).logits
    with torch.no_grad(), bench.attention_path(counting), packed_attention(model):
        theirs = model(input_ids=ids, position_ids=positions, use_cache=False).logits
    assert len(calls) == model.config.num_hidden_layers
    assert segment_attention.segment_sdpa_forward is not counting
    torch.testing.assert_close(theirs, grapes, atol=1e-5, rtol=1e-5)
