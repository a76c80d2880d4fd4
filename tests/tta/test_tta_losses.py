"""ITTA's losses against hand computations."""

import pytest
import torch

from grape.tta.losses import alignment_penalty, consistency_loss, two_view_cross_entropy, zscored


def test_alignment_penalty_on_a_three_parameter_toy_equals_the_hand_computation():
    # featurizer θ = (1, 2, 3); consistency loss ½ Σ w_i θ_i², so its gradient in θ is w ⊙ θ = (1, 2, 3) at w = 1;
    # main loss Σ a_i θ_i with a = (3, 1, 2), gradient a.
    theta = torch.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = torch.ones(3, requires_grad=True)
    a = torch.tensor([3.0, 1.0, 2.0])
    (g_consistency,) = torch.autograd.grad(0.5 * (w * theta**2).sum(), theta, create_graph=True)
    (g_main,) = torch.autograd.grad((a * theta).sum(), theta)
    penalty = alignment_penalty([g_consistency], [g_main], weight=0.1)
    # z-scores (mean, unbiased std): (1, 2, 3) -> (-1, 0, 1); (3, 1, 2) -> (1, -1, 0); difference (-2, 1, 1);
    # mean square 6 / 3 = 2; times 0.1
    assert penalty.item() == pytest.approx(0.2, abs=1e-7)
    # d/dw_i = 0.1 · (2/3) · (difference_i / std) · θ_i with mean and std held constant (as the release does)
    (grad_w,) = torch.autograd.grad(penalty, w)
    torch.testing.assert_close(grad_w, torch.tensor([-2.0, 2.0, 3.0]) * 0.2 / 3)


def test_alignment_penalty_concatenates_parameters_and_ignores_scale():
    g1 = [torch.tensor([1.0, 2.0]), torch.tensor([3.0])]
    assert alignment_penalty(g1, [torch.tensor([10.0, 20.0]), torch.tensor([30.0])]).item() == pytest.approx(0.0)
    assert alignment_penalty(g1, [torch.tensor([3.0, 1.0]), torch.tensor([2.0])], 1.0).item() == pytest.approx(2.0)
    with pytest.raises(ValueError, match="2 consistency gradients against 1"):
        alignment_penalty(g1, [torch.tensor([1.0, 2.0, 3.0])])


def test_zscored_uses_the_unbiased_std():
    torch.testing.assert_close(zscored(torch.tensor([2.0, 4.0, 6.0])), torch.tensor([-1.0, 0.0, 1.0]))


def test_consistency_loss_is_the_mean_square_of_the_mapped_difference():
    z, z_aug = torch.tensor([[0.0, 0.0]]), torch.tensor([[1.0, -2.0]])
    assert consistency_loss(z, z_aug).item() == pytest.approx(2.5)  # (1 + 4) / 2
    assert consistency_loss(z, z_aug, torch.relu).item() == pytest.approx(0.5)  # (1 + 0) / 2
    assert consistency_loss(z, z_aug, lambda d: 3 * d).item() == pytest.approx(22.5)


def test_two_view_cross_entropy_adds_both_views():
    y = torch.tensor([0])
    uniform, sure = torch.zeros(1, 2), torch.tensor([[0.0, -100.0]])
    assert two_view_cross_entropy(uniform, sure, y).item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
