"""Per-example attention over a packed row equals each example run on its own (logits and gradients), through
sliding-window layers too; anything else falls back to transformers' SDPA; the model's implementation returns."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_gemma3, tiny_llama

from grape.models.segment_attention import SEGMENT_SDPA, packed_attention, segment_bounds, window_mask

LENGTHS = [7, 30, 1, 19]  # 30 and 19 exceed the sliding window of 8: the windowed branch runs


@pytest.fixture(params=["gemma", "llama"])
def model(request):
    return tiny_gemma3(vocab_size=64, sliding_window=8) if request.param == "gemma" else tiny_llama(vocab_size=64)


def examples() -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return [torch.randint(3, 64, (n,), generator=generator) for n in LENGTHS]


def test_segment_bounds_cut_where_positions_restart():
    assert segment_bounds(torch.tensor([0, 1, 2, 0, 1, 0])) == [(0, 3), (3, 5), (5, 6)]
    assert segment_bounds(torch.tensor([0, 1, 2, 3])) == [(0, 4)]
    assert segment_bounds(torch.tensor([0, 0, 0])) == [(0, 1), (1, 2), (2, 3)]


def test_window_mask_by_hand():
    expected = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(window_mask(4, 2, torch.device("cpu")), expected)


def separate(model, rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits of every token, gradient of the embeddings): each example in a forward pass of its own."""
    model.zero_grad()
    logits = [model(input_ids=row[None]).logits[0] for row in rows]
    total = torch.cat(logits)
    total.logsumexp(-1).sum().backward()
    return total.detach(), model.get_input_embeddings().weight.grad.clone()


def packed(model, rows: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """The same, the examples packed into one row with restarting positions (TRL's padding-free layout). Without
    a cache, as a training step runs: with one, transformers does not look for packed examples at all."""
    model.zero_grad()
    ids = torch.cat(rows)[None]
    positions = torch.cat([torch.arange(len(r)) for r in rows])[None]
    logits = model(input_ids=ids, position_ids=positions, use_cache=False).logits[0]  # as in training
    logits.logsumexp(-1).sum().backward()
    return logits.detach(), model.get_input_embeddings().weight.grad.clone()


def test_a_packed_row_equals_each_example_alone(model):
    rows = examples()
    reference_logits, reference_grad = separate(model, rows)
    with packed_attention(model):
        assert model.config._attn_implementation == SEGMENT_SDPA
        logits, grad = packed(model, rows)
    assert model.config._attn_implementation == "sdpa"
    torch.testing.assert_close(logits, reference_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(grad, reference_grad, atol=1e-5, rtol=1e-5)
    # and what transformers' block-diagonal SDPA gives (the path this replaces)
    sdpa_logits, _ = packed(model, rows)
    torch.testing.assert_close(logits, sdpa_logits, atol=1e-5, rtol=1e-5)


def test_padded_batches_cached_decoding_and_chunked_prefill_fall_back_to_sdpa(model):
    rows = examples()[:2]
    width = max(len(r) for r in rows)
    ids = torch.stack([torch.cat([r, torch.zeros(width - len(r), dtype=torch.long)]) for r in rows])
    mask = torch.stack([torch.arange(width) < len(r) for r in rows]).long()
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
        prompt = model(input_ids=ids[:1, :5], use_cache=True)
        expected_step = model(input_ids=ids[:1, 5:6], past_key_values=prompt.past_key_values).logits
        whole = model(input_ids=ids[1:, :19]).logits
        with packed_attention(model):
            got = model(input_ids=ids, attention_mask=mask).logits
            prompt = model(input_ids=ids[:1, :5], use_cache=True)
            step = model(input_ids=ids[:1, 5:6], past_key_values=prompt.past_key_values).logits
            head = model(input_ids=ids[1:, :4], use_cache=True)  # a prefill in chunks: 15 queries after 4 cached
            chunk = model(input_ids=ids[1:, 4:19], past_key_values=head.past_key_values).logits
    real = mask.bool()
    torch.testing.assert_close(got[real], expected[real], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(step, expected_step, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(chunk, whole[:, 4:], atol=1e-5, rtol=1e-5)


def test_other_implementations_are_left_alone():
    model = tiny_llama(vocab_size=64)
    model.set_attn_implementation("eager")
    with packed_attention(model):
        assert model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == "eager"


def test_the_implementation_comes_back_after_an_error():
    model = tiny_llama(vocab_size=64)
    with pytest.raises(RuntimeError), packed_attention(model):
        raise RuntimeError("a failed step")
    assert model.config._attn_implementation == "sdpa"
