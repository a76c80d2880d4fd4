"""Attention run by run over a packed row equals each sequence run on its own (logits and gradients), for
training's examples and for the scoring engine's prompt-and-responses groups, through sliding-window layers
too; anything else falls back to transformers' SDPA; the model's implementation returns."""

from __future__ import annotations

import pytest
import torch
from tiny_models import tiny_gemma3, tiny_llama

from grape.models.segment_attention import SEGMENT_SDPA, Run, packed_attention, plan_runs, run_mask, segment_bounds

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
