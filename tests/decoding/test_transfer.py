"""The arithmetic of a guided step against values worked out by hand."""

import math

import pytest
import torch

from grape.decoding.transfer import choose, direct_q, indirect_q, step_scores


def test_direct_q_is_the_mean_reward_of_each_candidates_rollouts():
    rewards = torch.tensor([[1.0, 3.0], [-2.0, 0.0], [0.5, 0.5]])
    assert direct_q(rewards).tolist() == [2.0, -1.0, 0.5]


def test_indirect_q_weights_each_rollout_by_exp_of_the_reward_gap_over_beta():
    rewards = torch.tensor([[1.0, 2.0], [-1.0, 4.0]])
    baseline = torch.tensor([[0.0, 2.0], [1.0, 0.0]])
    # by hand, β = 2: candidate 0: (e^{1/2}·1 + e^{0}·2) / 2; candidate 1: (e^{-1}·(-1) + e^{2}·4) / 2
    expected = [(math.exp(0.5) * 1 + 2) / 2, (-math.exp(-1) + 4 * math.exp(2)) / 2]
    assert indirect_q(rewards, baseline, beta=2.0).tolist() == pytest.approx(expected, rel=1e-6)
    # equal rewards: weight 1, so indirect transfer is direct transfer
    assert torch.allclose(indirect_q(rewards, rewards, 0.7), direct_q(rewards))


def test_indirect_q_survives_a_reward_gap_that_overflows_float32():
    q = indirect_q(torch.tensor([[100.0]]), torch.tensor([[0.0]]), beta=1.0)
    assert q.dtype == torch.float32 and math.isinf(q.item())  # e^{100}·100 > 3.4e38: inf, not nan
    assert step_scores(torch.tensor([-1.0]), q, alpha=0.0).tolist() == [-1.0]  # α = 0 ignores even that


def test_step_scores_add_alpha_times_the_value_to_the_log_prior():
    prior = torch.tensor([-0.1, -1.0, -3.0])
    values = torch.tensor([0.0, 2.0, 1.0])
    assert step_scores(prior, values, 1.0).tolist() == pytest.approx([-0.1, 1.0, -2.0])
    assert step_scores(prior, values, 0.5).tolist() == pytest.approx([-0.1, 0.0, -2.5])
    assert step_scores(prior, None, 1.0).tolist() == pytest.approx(prior.tolist())


def test_greedy_choice_takes_the_first_best_and_sampling_follows_the_softmax():
    assert choose(torch.tensor([0.0, 2.0, 2.0]), "greedy", 1.0, None) == 1  # a tie keeps the prior's order
    generator = torch.Generator().manual_seed(0)
    scores = torch.tensor([0.0, math.log(3.0)])  # softmax at T = 1: 1/4, 3/4
    draws = [choose(scores, "sample", 1.0, generator) for _ in range(4000)]
    assert sum(draws) / len(draws) == pytest.approx(0.75, abs=0.03)
    cold = [choose(scores, "sample", 0.05, generator) for _ in range(200)]  # T → 0: the argmax
    assert sum(cold) == 200
