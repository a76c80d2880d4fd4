"""The exponential race from per-row streams: against a plainly written argmax, against the distribution it
should follow, and each continuation's stream its own."""

import math

import pytest
import torch

from grape.search.row_sampling import next_exponentials, row_stream, sampled_tokens


def _reference(logits: list[float], exponentials: list[float], temperature: float) -> int:
    """The token of largest exp(logit / temperature) / E, compared one by one."""
    best, best_value = 0, -1.0
    for token, (logit, e) in enumerate(zip(logits, exponentials, strict=True)):
        value = math.exp(logit / temperature) / e
        if value > best_value:
            best, best_value = token, value
    return best


def test_each_row_takes_the_token_that_wins_the_race():
    logits = torch.tensor([[0.0, 1.0, -30.0, 2.0, 0.5], [3.0, -1.0, 0.0, 0.0, -2.0]])
    streams = [row_stream(0, 0), row_stream(0, 1)]
    for temperature in (0.7, 1.0, 1.5):
        for _ in range(200):
            exponentials = next_exponentials(streams, 5)
            expected = [_reference(logits[r].tolist(), exponentials[r].tolist(), temperature) for r in range(2)]
            assert sampled_tokens(logits, exponentials, temperature).tolist() == expected


def test_a_token_of_probability_zero_is_never_drawn():
    logits = torch.tensor([[float("-inf"), 0.0, float("-inf"), 0.0, float("-inf")]])
    exponentials = torch.tensor([[0.0, 1.0, 1e-300, 2.0, 0.5]], dtype=torch.float64)  # a 0 and a tiny one
    assert sampled_tokens(logits, exponentials, 1.5).item() == 1
    stream = row_stream(5, 0)
    for _ in range(300):
        assert sampled_tokens(logits, next_exponentials([stream], 5), 1.5).item() in (1, 3)


def test_draws_follow_the_tempered_distribution():
    logits = torch.tensor([0.0, 1.0, 2.0, -1.0])
    streams, temperature, draws = [row_stream(3, row) for row in range(500)], 1.5, 20_000
    counts = torch.zeros(4)
    for _ in range(draws // 500):
        counts += torch.bincount(sampled_tokens(logits.expand(500, 4), next_exponentials(streams, 4), temperature),
                                 minlength=4)  # fmt: skip
    expected = torch.softmax(logits / temperature, dim=0)
    # 4 standard errors of a share at 20,000 draws is under 0.015
    assert (counts / draws).tolist() == pytest.approx(expected.tolist(), abs=0.015)


def test_each_continuation_has_its_own_reproducible_stream():
    firsts = [next_exponentials([row_stream(seed, row)], 3)[0].tolist() for seed in (0, 1) for row in (0, 1, 2)]
    assert len({tuple(f) for f in firsts}) == 6  # seed 0 row 1 is not seed 1 row 0
    assert next_exponentials([row_stream(1, 2)], 3)[0].tolist() == firsts[5]
