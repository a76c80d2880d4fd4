"""IFT's loss math against plain references written from the official code's loops (per padded row:
cumsum_item = -logps / n, zero off the mask, a discounted suffix sum, zero off the mask, scaled to sum n;
loss = mean over rows of Σ w·nll / n), and its properties: never across a sequence end, weights of mean 1,
γ = 0 is the per-sequence mean NLL, and the gradient flows through the weights as in the official code."""

import pytest
import torch

from grape.training.ift import temporal_residual
from grape.training.losses import discounted_suffix_sum, ift_nll, ift_token_weights, sequence_weighted_nll

GAMMAS = pytest.mark.parametrize("gamma", [0.0, 0.5, 0.95, 1.0])


def _segments(lengths):
    return torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))


def reference_suffix(values, lengths, gamma):
    out, start = [], 0
    for n in lengths:
        running, part = 0.0, []
        for x in reversed(values[start : start + n].tolist()):
            running = x + gamma * running
            part.append(running)
        out += reversed(part)
        start += n
    return torch.tensor(out, dtype=values.dtype)


def reference_ift_rows(logps, mask, gamma):
    """The official per-row computation on a padded [R, T] layout."""
    losses = []
    for row_logps, row_mask in zip(logps, mask, strict=True):
        n = row_mask.sum()
        item = torch.where(row_mask, -row_logps / n, torch.zeros_like(row_logps))
        if gamma == 0:
            weight = torch.ones_like(row_logps)
        else:
            suffix, running = [], torch.zeros(())
            for t in reversed(range(len(item))):
                running = item[t] + gamma * running
                suffix.append(running)
            weight = torch.stack(suffix[::-1])
        weight = torch.where(row_mask, weight, torch.zeros_like(weight))
        weight = weight * (n / weight.sum())
        losses.append((-row_logps * weight * row_mask).sum() / n)
    return torch.stack(losses).mean()


@GAMMAS
def test_the_discounted_suffix_sum_equals_a_reverse_loop_per_sequence(gamma):
    lengths = [5, 1, 9, 3]
    values = torch.randn(sum(lengths), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    got = discounted_suffix_sum(values, _segments(lengths), gamma)
    torch.testing.assert_close(got, reference_suffix(values, lengths, gamma))


def test_the_suffix_sum_never_crosses_a_sequence_end():
    values = torch.tensor([1.0, 1.0, 1.0, 1000.0, 1.0])
    got = discounted_suffix_sum(values, torch.tensor([0, 0, 0, 1, 1]), 1.0)
    assert got.tolist() == [3.0, 2.0, 1.0, 1001.0, 1.0]
    assert discounted_suffix_sum(values, torch.tensor([0, 0, 0, 1, 1]), 0.5)[:3].tolist() == [1.75, 1.5, 1.0]


@GAMMAS
def test_ift_loss_equals_the_official_per_row_computation_and_its_gradient(gamma):
    generator = torch.Generator().manual_seed(2)
    logps = (-3 * torch.rand(3, 7, generator=generator, dtype=torch.float64)).requires_grad_(True)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 1, 1], [0, 0, 0, 0, 1, 0, 0]], dtype=torch.bool)
    sequence = torch.arange(3)[:, None].expand(3, 7).reshape(-1)
    got = ift_nll(logps.reshape(-1), mask.reshape(-1), sequence, gamma)
    (got_grad,) = torch.autograd.grad(got, logps)
    expected = reference_ift_rows(logps, mask, gamma)
    (expected_grad,) = torch.autograd.grad(expected, logps)
    torch.testing.assert_close(got, expected)
    torch.testing.assert_close(got_grad, expected_grad)  # the weights carry gradient, as in the official code
    if gamma > 0:
        weights = ift_token_weights(-logps.reshape(-1).detach(), mask.reshape(-1), sequence, gamma)
        detached = sequence_weighted_nll(logps.reshape(-1), weights, sequence)
        (detached_grad,) = torch.autograd.grad(detached, logps)
        assert not torch.allclose(detached_grad, got_grad)


@GAMMAS
def test_the_weights_average_one_per_sequence_and_vanish_off_the_mask(gamma):
    generator = torch.Generator().manual_seed(3)
    nll = 4 * torch.rand(12, generator=generator)
    mask = torch.tensor([0, 1, 1, 1, 0, 0, 0, 1, 1, 0, 1, 1], dtype=torch.bool)
    sequence = torch.tensor([0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2])
    weights = ift_token_weights(nll, mask, sequence, gamma)
    assert torch.all(weights[~mask] == 0) and torch.all(weights[mask] > 0)
    for s in range(3):
        torch.testing.assert_close(weights[(sequence == s) & mask].mean(), torch.tensor(1.0))
    if gamma > 0:  # a token with more (discounted) loss after it weighs more: the first loss token of row 0
        assert weights[1] > weights[3]


def test_with_gamma_zero_the_loss_is_the_per_sequence_mean_nll():
    logps = torch.tensor([-1.0, -2.0, -3.0, -4.0, -0.5])
    mask = torch.tensor([True, True, False, True, True])
    sequence = torch.tensor([0, 0, 0, 1, 1])
    expected = ((1.0 + 2.0) / 2 + (4.0 + 0.5) / 2) / 2
    assert ift_nll(logps, mask, sequence, 0.0).item() == pytest.approx(expected)


def test_the_temporal_residual_mixes_gold_and_predicted_embeddings():
    gold, predicted = torch.full((1, 2, 3), 2.0), torch.full((1, 2, 3), 10.0)
    assert temporal_residual(gold, predicted, 0.2).unique().tolist() == [pytest.approx(3.6)]
    assert torch.equal(temporal_residual(gold, predicted, 0.0), gold)
