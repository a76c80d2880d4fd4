"""The loss functions against values computed by hand (and SimPO against TRL's own CPO code)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from grape.training.losses import (
    dpo_sigmoid_loss,
    sequence_weighted_nll,
    simpo_loss,
    token_mean_nll,
    token_weighted_nll,
    weighted_units,
)


def _softplus(x: float) -> float:
    """-log σ(-x), by hand."""
    return math.log1p(math.exp(x))


def test_token_mean_nll_is_the_mean_over_masked_in_tokens():
    logprobs = torch.tensor([-1.0, -2.0, -3.0, -4.0])
    assert token_mean_nll(logprobs, torch.tensor([True, True, False, True])).item() == pytest.approx(7 / 3)
    assert token_mean_nll(logprobs.reshape(2, 2), torch.tensor([[True, False], [False, True]])).item() == 2.5
    assert token_mean_nll(logprobs, torch.zeros(4, dtype=torch.bool)).item() == 0.0  # no trainable token: 0, no NaN


def test_token_weighted_nll_normalises_over_the_batch_weight():
    logprobs = torch.tensor([-1.0, -2.0, -3.0])
    assert token_weighted_nll(logprobs, torch.tensor([2.0, 0.0, 1.0])).item() == pytest.approx(5 / 3)
    assert token_weighted_nll(logprobs, torch.ones(3)).item() == pytest.approx(2.0)  # weights 1: the plain mean
    assert token_weighted_nll(logprobs, torch.zeros(3)).item() == 0.0


def test_sequence_weighted_nll_averages_per_sequence_means_and_skips_weightless_sequences():
    logprobs = torch.tensor([-1.0, -2.0, -3.0, -4.0, -5.0])
    weights = torch.tensor([1.0, 1.0, 2.0, 0.0, 0.0])
    sequence = torch.tensor([0, 0, 1, 1, 2])
    # sequence 0: (1 + 2) / 2 = 1.5; sequence 1: 2·3 / 2 = 3; sequence 2 has no weight and does not count.
    assert sequence_weighted_nll(logprobs, weights, sequence).item() == pytest.approx(2.25)
    # The token-normalised loss of the same batch differs: (1 + 2 + 6) / 4.
    assert token_weighted_nll(logprobs, weights).item() == pytest.approx(9 / 4)
    # Sequence ids in any order.
    shuffled = torch.tensor([3, 1, 0, 4, 2])
    assert sequence_weighted_nll(logprobs[shuffled], weights[shuffled], sequence[shuffled]).item() == pytest.approx(
        2.25
    )
    assert sequence_weighted_nll(logprobs, torch.zeros(5), sequence).item() == 0.0


def test_sequence_weighted_nll_is_tl_trainings_key_token_loss():
    # One sample, NLLs: key token K = 1; closing token P = 2; others O = 3, 4. w = min(|O| / |K|, 9) = 2.
    # TL-Training: (w·Σ_K ℓ + Σ_P ℓ + Σ_O ℓ) / (w·|K| + |P| + |O|) = (2 + 2 + 7) / (2 + 1 + 2) = 11 / 5.
    logprobs = -torch.tensor([1.0, 2.0, 3.0, 4.0])
    loss = sequence_weighted_nll(logprobs, torch.tensor([2.0, 1.0, 1.0, 1.0]), torch.zeros(4, dtype=torch.long))
    assert loss.item() == pytest.approx(11 / 5)


def test_weighted_units_count_weight_or_weighted_sequences():
    weights, sequence = torch.tensor([1.0, 0.5, 0.0, 0.0, 2.0]), torch.tensor([0, 0, 1, 1, 2])
    assert weighted_units(weights, sequence, "token").item() == 3.5
    assert weighted_units(weights, sequence, "sequence").item() == 2.0
    with pytest.raises(ValueError, match="per must be"):
        weighted_units(weights, sequence, "row")


def test_weighted_losses_pass_gradients_to_weighted_tokens_only():
    logprobs = torch.tensor([-1.0, -2.0, -3.0], requires_grad=True)
    sequence_weighted_nll(logprobs, torch.tensor([1.0, 3.0, 0.0]), torch.tensor([0, 0, 1])).backward()
    torch.testing.assert_close(logprobs.grad, torch.tensor([-0.25, -0.75, 0.0]))  # -w_t / Σ w of its sequence


def test_dpo_sigmoid_loss_by_hand():
    chosen, rejected = torch.tensor([-10.0, -5.0]), torch.tensor([-12.0, -4.0])
    ref_chosen, ref_rejected = torch.tensor([-11.0, -5.0]), torch.tensor([-11.0, -5.0])
    losses = dpo_sigmoid_loss(chosen, rejected, ref_chosen, ref_rejected, beta=0.1)
    # margins: (−10 + 11) − (−12 + 11) = 2; (0) − (1) = −1. loss = −log σ(β·margin) = log(1 + e^(−β·margin)).
    assert losses.tolist() == pytest.approx([_softplus(-0.2), _softplus(0.1)])
    # At a zero margin the loss is log 2 and d loss / d π_c = −β/2.
    policy = torch.tensor([-3.0], requires_grad=True)
    loss = dpo_sigmoid_loss(policy, torch.tensor([-3.0]), torch.tensor([-3.0]), torch.tensor([-3.0]), beta=0.5)
    loss.sum().backward()
    assert loss.item() == pytest.approx(math.log(2))
    assert policy.grad.item() == pytest.approx(-0.25)


def test_simpo_loss_by_hand():
    losses = simpo_loss(torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0]), beta=2.5, gamma=0.5)
    # β·(c̄ − r̄) − γ: 2.5·0.5 − 0.5 = 0.75; 2.5·(−1) − 0.5 = −3.
    assert losses.tolist() == pytest.approx([_softplus(-0.75), _softplus(3.0)])


def test_simpo_loss_equals_trls_cpo_trainer_simpo_loss():
    """TRL's SimPO lives in its experimental CPO trainer: pin its definition (no label smoothing, alpha 0)."""
    from trl.experimental.cpo.cpo_trainer import CPOTrainer

    chosen, rejected = torch.tensor([-0.7, -2.0, -1.1]), torch.tensor([-1.5, -1.0, -1.1])
    trainer = SimpleNamespace(alpha=0.0, loss_type="simpo", simpo_gamma=0.5, beta=2.5, label_smoothing=0.0,
                              accelerator=SimpleNamespace(device=torch.device("cpu")))  # fmt: skip
    theirs, _, _ = CPOTrainer.cpo_loss(trainer, chosen, rejected)
    torch.testing.assert_close(simpo_loss(chosen, rejected, beta=2.5, gamma=0.5), theirs)
