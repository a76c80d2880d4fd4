"""Attention run by run over a packed row equals each sequence run on its own (logits and gradients), for
training's examples and for the scoring engine's prompt-and-responses groups, through sliding-window layers
too; anything else falls back to transformers' SDPA; the model's implementation returns."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_gemma3, tiny_llama

from grape.models.segment_attention import (
    SEGMENT_SDPA,
    Run,
    attends_by_cascade,
    examples_of,
    merge_attention,
    packed_attention,
    plan_runs,
    run_mask,
    segment_bounds,
    segment_sdpa_forward,
)

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


def test_runs_of_training_and_scoring_layouts():
    # training: three examples
    assert plan_runs(torch.tensor([0, 1, 2, 0, 1, 0])) == [Run(0, 3, 0, 0), Run(3, 5, 3, 0), Run(5, 6, 5, 0)]
    # scoring: prompt of 2 + responses of 2, 1, 3; then a group with one response
    positions = torch.tensor([0, 1, 2, 3, 2, 2, 3, 4, 0, 1, 2])
    assert plan_runs(positions) == [Run(0, 4, 0, 0), Run(4, 5, 0, 2), Run(5, 8, 0, 2), Run(8, 11, 8, 0)]


@pytest.mark.parametrize("positions", [[1, 2, 3], [0, 1, 5], [0, 1, 0, 3]])
def test_positions_no_packed_layout_gives_are_refused(positions):
    with pytest.raises(ValueError, match="continue"):
        plan_runs(torch.tensor(positions))


def test_run_masks_by_hand():
    cpu = torch.device("cpu")
    windowed = torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(run_mask(4, 0, 2, cpu), windowed)
    # two queries after a prefix of 3: all of the prefix, then causal; with a window of 3, the oldest drop out
    assert run_mask(2, 3, None, cpu).int().tolist() == [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]]
    assert run_mask(2, 3, 3, cpu).int().tolist() == [[0, 1, 1, 1, 0], [0, 0, 1, 1, 1]]


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


def test_prompt_and_responses_rows_equal_each_pair_alone(model):
    """The scoring engine's layout: [prompt][r1][r2]... with every response at the prompt's positions; two rows
    in a batch. Each response's logits equal those of prompt + response run alone."""
    generator = torch.Generator().manual_seed(1)
    draw = lambda n: torch.randint(3, 64, (n,), generator=generator)  # noqa: E731
    groups = [(draw(6), [draw(5), draw(11), draw(1)]), (draw(3), [draw(4)]), (draw(9), [draw(2), draw(7)])]
    rows = [groups[:2], groups[2:]]
    layouts = []
    for row in rows:
        ids, positions = [], []
        for prompt, responses in row:
            ids += [prompt, *responses]
            p = len(prompt)
            positions += [torch.arange(p)] + [torch.arange(p, p + len(r)) for r in responses]
        layouts.append((torch.cat(ids), torch.cat(positions)))
    width = max(len(ids) for ids, _ in layouts)
    pad = lambda x, n: torch.cat([x, torch.arange(n)])  # noqa: E731  padding: one more run at the end
    ids = torch.stack([pad(i, width - len(i)) for i, _ in layouts])
    positions = torch.stack([pad(p, width - len(p)) for _, p in layouts])
    with torch.no_grad(), packed_attention(model) as switched:
        assert switched
        logits = model(input_ids=ids, position_ids=positions, use_cache=False).logits
    with torch.no_grad():
        for b, row in enumerate(rows):
            at = 0
            for prompt, responses in row:
                whole = model(input_ids=prompt[None]).logits[0]
                torch.testing.assert_close(logits[b, at : at + len(prompt)], whole, atol=1e-5, rtol=1e-5)
                at += len(prompt)
                for response in responses:
                    alone = model(input_ids=torch.cat([prompt, response])[None]).logits[0, len(prompt) :]
                    torch.testing.assert_close(logits[b, at : at + len(response)], alone, atol=1e-5, rtol=1e-5)
                    at += len(response)


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
    with packed_attention(model) as switched:
        assert not switched and model.config._attn_implementation == "eager"
    assert model.config._attn_implementation == "eager"


def test_the_implementation_comes_back_after_an_error():
    model = tiny_llama(vocab_size=64)
    with pytest.raises(RuntimeError), packed_attention(model):
        raise RuntimeError("a failed step")
    assert model.config._attn_implementation == "sdpa"


def test_examples_and_when_they_attend_as_a_cascade():
    # prompt 2 + r1 of 2, r2 of 1, r3 of 3; then an example of one run; then prompt 2 + r1 of 1, r2 of 4
    positions = torch.tensor([0, 1, 2, 3, 2, 2, 3, 4, 0, 1, 2, 0, 1, 2, 2, 3, 4, 5])
    examples = examples_of(plan_runs(positions))
    assert [[(r.start, r.end, r.prefix) for r in e] for e in examples] == [
        [(0, 4, 0), (4, 5, 2), (5, 8, 2)], [(8, 11, 0)], [(11, 14, 0), (14, 18, 2)]]  # fmt: skip
    assert [attends_by_cascade(e, None) for e in examples] == [True, False, True]  # a lone run: plain causal
    assert attends_by_cascade(examples[0], 5) and not attends_by_cascade(examples[0], 4)  # last position 4
    assert attends_by_cascade(examples[2], 6) and not attends_by_cascade(examples[2], 5)  # r2 reaches 5
    assert not attends_by_cascade([Run(0, 4, 0, 0), Run(4, 5, 0, 2), Run(5, 6, 0, 3)], None)  # prefixes differ


def test_merge_attention_is_the_softmax_over_both_key_sets():
    generator = torch.Generator().manual_seed(0)
    q, keys, values = (torch.randn(2, 3, n, 4, generator=generator, dtype=torch.float64) for n in (5, 9, 9))
    scores = q @ keys.transpose(-1, -2)
    whole = torch.softmax(scores, -1) @ values
    parts = [(torch.softmax(scores[..., s], -1) @ values[..., s, :], scores[..., s].logsumexp(-1))
             for s in (slice(0, 4), slice(4, 9))]  # fmt: skip
    (out_a, lse_a), (out_b, lse_b) = parts
    torch.testing.assert_close(merge_attention(out_a, lse_a, out_b.clone(), lse_b), whole)
    none_of_a = merge_attention(out_a, torch.full_like(lse_a, float("-inf")), out_b.clone(), lse_b)
    assert torch.equal(none_of_a, out_b)  # a query that sees none of A keeps its attention over B


def masked_reference(q, k, v, groups, window):
    """Softmax attention [1, T, H, D] in float64 under a mask written from the layout, and the positions [T]:
    ``groups`` [(prompt length, [response lengths])] packed as [prompt][r1][r2]...; the prompt and r1 see what
    precedes them in their group, every later response the whole prompt and itself causally."""
    t = q.shape[2]
    seen = torch.zeros(t, t, dtype=torch.bool)
    position = torch.zeros(t, dtype=torch.long)
    at = 0
    for prompt, responses in groups:
        for row in range(at, at + prompt + responses[0]):  # the prompt and the first response: causal
            position[row], seen[row, at : row + 1] = row - at, True
        start = at + prompt + responses[0]
        for n in responses[1:]:
            for row in range(start, start + n):
                position[row] = prompt + row - start
                seen[row, at : at + prompt] = seen[row, start : row + 1] = True
            start += n
        at = start
    if window is not None:
        seen &= (position[:, None] - position[None, :]) < window
    per_key_head = q.shape[1] // k.shape[1]
    k, v = (x.repeat_interleave(per_key_head, 1).double() for x in (k, v))
    scores = (q.double() @ k.transpose(-1, -2)) * q.shape[-1] ** -0.5
    out = torch.softmax(scores.masked_fill(~seen, float("-inf")), -1) @ v
    return out.transpose(1, 2), position


class _Module:
    is_causal = True

    def __init__(self, window):
        self.sliding_window = window


@pytest.mark.parametrize("kv_heads", [1, 2])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("window", [None, 64, 9])  # 9: binds in the longer groups, which attend run by run
def test_the_cascade_equals_attention_under_the_layouts_mask(kv_heads, dtype, window, monkeypatch):
    from grape.models import segment_attention

    groups = [(6, [5, 11, 1]), (3, [4]), (9, [2, 7]), (1, [3, 3])]
    t = sum(p + sum(r) for p, r in groups)
    generator = torch.Generator().manual_seed(2)
    q = torch.randn(1, 4, t, 16, generator=generator).to(dtype)
    k, v = (torch.randn(1, kv_heads, t, 16, generator=generator).to(dtype) for _ in range(2))
    expected, positions = masked_reference(q, k, v, groups, window)
    cascades, original = [], segment_attention._cascade
    monkeypatch.setattr(segment_attention, "_cascade", lambda *a: cascades.append(a[3]) or original(*a))
    with torch.no_grad():
        out, _ = segment_sdpa_forward(_Module(window), q, k, v, None, position_ids=positions[None])
    tolerance = 1e-5 if dtype == torch.float32 else 2e-2
    torch.testing.assert_close(out.double(), expected, atol=tolerance, rtol=tolerance)
    # (3, [4]) is one run (plain causal); with a window of 9 only (1, [3, 3]) stays under it
    assert len(cascades) == {None: 3, 64: 3, 9: 1}[window]
