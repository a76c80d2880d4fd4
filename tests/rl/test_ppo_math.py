"""PPO's arithmetic against plain per-sequence loops and hand-computed cases."""

import math

import pytest
import torch

from grape.rl.ppo_math import (
    aggregate,
    gae,
    kl_shaped_rewards,
    last_token_index,
    masked_whiten,
    micro_batch_weight,
    policy_loss,
    ppo_loss,
    value_loss,
)


def _random_masked(seed: int, batch: int = 5, length: int = 7):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, length + 1, (batch,), generator=g)
    lengths[0] = length  # one full row (a response cut at the cap), one of length 1
    lengths[1] = 1
    mask = (torch.arange(length)[None, :] < lengths[:, None]).float()
    return g, lengths, mask


def _reference_gae(rewards: list[float], values: list[float], gamma: float, lam: float):
    """The textbook loop on one unpadded sequence."""
    n, advantages, running = len(rewards), [0.0] * len(rewards), 0.0
    for t in reversed(range(n)):
        next_value = values[t + 1] if t + 1 < n else 0.0
        delta = rewards[t] + gamma * next_value - values[t]
        running = delta + gamma * lam * running
        advantages[t] = running
    return advantages, [a + v for a, v in zip(advantages, values, strict=True)]


@pytest.mark.parametrize(("seed", "gamma", "lam"), [(0, 1.0, 0.95), (1, 0.9, 0.8), (2, 1.0, 1.0), (3, 0.99, 0.0)])
def test_gae_equals_a_reverse_loop_on_each_unpadded_sequence(seed, gamma, lam):
    g, lengths, mask = _random_masked(seed)
    # garbage on padded positions must not leak into the result
    rewards, values = torch.randn(mask.shape, generator=g), torch.randn(mask.shape, generator=g)
    advantages, returns = gae(rewards, values, mask, gamma, lam)
    for row, n in enumerate(lengths.tolist()):
        ref_adv, ref_ret = _reference_gae(rewards[row, :n].tolist(), values[row, :n].tolist(), gamma, lam)
        assert advantages[row, :n].tolist() == pytest.approx(ref_adv, abs=1e-5)
        assert returns[row, :n].tolist() == pytest.approx(ref_ret, abs=1e-5)
        assert advantages[row, n:].abs().sum() == 0 and returns[row, n:].abs().sum() == 0


def test_gae_by_hand():
    # two tokens, reward 1 at the end, γ = 1, λ = 0.5: δ1 = 1 − 0.5, δ0 = 0 + 0.5 − 0.25
    advantages, returns = gae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.25, 0.5]]), torch.ones(1, 2), 1.0, 0.5)
    assert advantages[0].tolist() == pytest.approx([0.25 + 0.5 * 0.5, 0.5])
    assert returns[0].tolist() == pytest.approx([0.75, 1.0])


def test_whitening_gives_masked_mean_0_and_variance_1():
    g, _, mask = _random_masked(4, batch=6, length=9)
    x = 3.0 + 5.0 * torch.randn(mask.shape, generator=g)
    white = masked_whiten(x, mask)
    values = white[mask.bool()]
    assert values.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert values.var(unbiased=False).item() == pytest.approx(1.0, abs=1e-5)
    assert white[~mask.bool()].abs().sum() == 0
    # the order of the values is kept: whitening is an increasing affine map
    assert torch.equal(values.argsort(), x[mask.bool()].argsort())


def test_kl_shaping_and_the_reward_on_the_last_response_token_by_hand():
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])  # row 0 cut at the cap, row 1 ended at once
    logprobs = torch.tensor([[-1.0, -2.0, -0.5], [-0.1, -9.0, -9.0]])
    ref = torch.tensor([[-1.5, -1.0, -0.5], [-0.3, 0.0, 0.0]])
    rewards, kl = kl_shaped_rewards(torch.tensor([1.0, 0.1]), logprobs, ref, mask, kl_coef=0.05)
    assert last_token_index(mask).tolist() == [2, 0]
    assert kl.flatten().tolist() == pytest.approx([0.5, -1.0, 0.0, 0.2, 0.0, 0.0])
    assert rewards.flatten().tolist() == pytest.approx([-0.025, 0.05, 1.0, -0.01 + 0.1, 0.0, 0.0])


def test_aggregation_per_sequence_weighs_sequences_equally_token_mean_weighs_tokens():
    per_token = torch.tensor([[1.0, 3.0, 5.0], [10.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    assert aggregate(per_token, mask, "sequence").item() == pytest.approx((3.0 + 10.0) / 2)
    assert aggregate(per_token, mask, "token").item() == pytest.approx(19.0 / 4)
    with pytest.raises(ValueError, match="unknown aggregation"):
        aggregate(per_token, mask, "batch")


@pytest.mark.parametrize(
    ("ratio", "advantage", "expected", "clipped"),
    [
        (1.1, 2.0, -2.2, False),  # inside the clip: −A ρ
        (1.5, 2.0, -2.4, True),  # A > 0, ρ above 1 + ε: the gain stops at 1.2 A
        (0.5, 2.0, -1.0, False),  # A > 0, ρ below 1 − ε: unclipped (the max keeps the worse, −A ρ)
        (0.5, -2.0, 1.6, True),  # A < 0, ρ below 1 − ε: the gain stops at 0.8 |A|
        (1.5, -2.0, 3.0, False),  # A < 0, ρ above 1 + ε: unclipped, the full penalty
        (0.9, -2.0, 1.8, False),  # inside the clip
    ],
)
def test_clipped_policy_loss_by_hand(ratio, advantage, expected, clipped):
    old = torch.tensor([[-1.0]])
    new = old + math.log(ratio)
    loss, clip_fraction = policy_loss(new, old, torch.tensor([[advantage]]), torch.ones(1, 1), clip=0.2)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert clip_fraction.item() == float(clipped)


def test_clipped_policy_loss_has_no_gradient_where_the_clip_binds():
    old = torch.zeros(1, 2)
    new = torch.tensor([[math.log(1.5), math.log(1.1)]], requires_grad=True)
    loss, _ = policy_loss(new, old, torch.tensor([[1.0, 1.0]]), torch.ones(1, 2), how="token")
    loss.backward()
    assert new.grad[0, 0] == 0 and new.grad[0, 1].item() == pytest.approx(-1.1 / 2, rel=1e-5)


@pytest.mark.parametrize(
    ("value", "old", "target", "expected", "clipped"),
    [
        (1.1, 1.0, 2.0, 0.5 * 0.81, False),  # inside the clip
        (2.0, 1.0, 2.0, 0.5 * 0.64, True),  # moved past +0.2 onto the target: judged at 1.2, no gain from the jump
        (0.0, 1.0, 2.0, 0.5 * 4.0, False),  # moved away: the unclipped error is the larger
        (0.0, 1.0, -1.0, 0.5 * 3.24, True),  # moved past −0.2 towards the target: judged at 0.8, farther off
    ],
)
def test_clipped_value_loss_by_hand(value, old, target, expected, clipped):
    loss, clip_fraction = value_loss(
        torch.tensor([[value]]), torch.tensor([[old]]), torch.tensor([[target]]), torch.ones(1, 1), clip=0.2
    )
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert clip_fraction.item() == float(clipped)


def test_losses_ignore_padding_and_the_total_weights_the_value_loss():
    mask = torch.tensor([[1.0, 0.0]])
    zeros = torch.zeros(1, 2)
    loss, _ = policy_loss(torch.tensor([[0.0, 5.0]]), zeros, torch.tensor([[1.0, 100.0]]), mask)
    assert loss.item() == pytest.approx(-1.0)
    v_loss, _ = value_loss(torch.tensor([[0.1, 9.0]]), torch.tensor([[0.0, 0.0]]), torch.tensor([[0.3, -9.0]]), mask)
    assert v_loss.item() == pytest.approx(0.5 * 0.04, rel=1e-4)
    assert ppo_loss(loss, v_loss, 5.0).item() == pytest.approx(-1.0 + 5 * 0.02, rel=1e-4)


@pytest.mark.parametrize("how", ["sequence", "token"])
def test_micro_batch_weights_make_the_parts_losses_sum_to_the_whole_batchs(how):
    g, _, mask = _random_masked(3, batch=6)
    per_token = torch.randn(mask.shape, generator=g)
    whole = aggregate(per_token, mask, how)
    for parts in ([[0, 1, 2], [3, 4, 5]], [[0], [1], [2], [3], [4], [5]], [[0, 1, 2, 3], [4, 5]]):
        total = sum(micro_batch_weight(mask[rows], mask, how) * aggregate(per_token[rows], mask[rows], how)
                    for rows in parts)  # fmt: skip
        assert float(total) == pytest.approx(float(whole), rel=1e-6)
