"""f_Θ and f_w start at the identity; MixStyle swaps channel statistics; the two views share the clean path."""

import pytest
import torch

from grape.tta.affine import AffineStack
from grape.tta.mixstyle import mixstyle
from grape.tta.network import DomainNet


def tiny_net(**kwargs) -> DomainNet:
    torch.manual_seed(0)
    return DomainNet((1, 8, 8), classes=3, width=4, blocks=3, **kwargs)


def test_affine_stacks_are_the_identity_at_initialisation():
    x = torch.rand(4, 2, 3, 3)  # non-negative, like a block's output after its ReLU
    for depth in (1, 5, 10):
        torch.testing.assert_close(AffineStack((2, 3, 3), depth)(x), x, rtol=0, atol=0)
    signed = torch.randn(4, 6)
    torch.testing.assert_close(AffineStack((6,), 1)(signed), signed, rtol=0, atol=0)
    # with depth >= 2 the ReLU between layers keeps the positive part of a signed input (the release's design)
    torch.testing.assert_close(AffineStack((6,), 10)(signed), signed.clamp_min(0), rtol=0, atol=0)


def test_the_models_stacks_start_at_the_identity_and_reset_returns_there():
    model = tiny_net()
    model.eval()
    x = torch.rand(5, 1, 8, 8)
    h, expected = model.stem(x), None
    for block in model.blocks:
        h = block(h)
    expected = model.classifier(h.mean(dim=(2, 3)))
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)  # f_Θ after every block changes nothing
    assert [tuple(a.scales[0].shape) for a in model.adapters] == [(4, 8, 8), (8, 4, 4), (16, 2, 2)]
    assert len(model.adapters[0].scales) == 5 and len(model.weight.scales) == 10
    assert all((p == 1).all() for a in [*model.adapters, model.weight] for p in a.scales)
    assert all((p == 0).all() for a in [*model.adapters, model.weight] for p in a.shifts)
    with torch.no_grad():
        model.adapters[1].shifts[0].add_(0.5)
    assert not torch.equal(model(x), expected)
    model.adapters[1].reset()
    torch.testing.assert_close(model(x), expected, rtol=0, atol=0)


def test_parameter_groups_do_not_overlap():
    model = tiny_net()
    groups = [model.network_parameters(), list(model.weight.parameters()), list(model.adapters.parameters())]
    ids = [{id(p) for p in group} for group in groups]
    assert sum(map(len, ids)) == len(list(model.parameters())) == len(set().union(*ids))
    assert {id(p) for p in model.featurizer_parameters()} == ids[0] - {id(p) for p in model.classifier.parameters()}


def test_mixstyle_mixes_channel_statistics_between_images():
    torch.manual_seed(1)
    h = torch.randn(6, 3, 4, 4) * torch.arange(1, 7).view(6, 1, 1, 1) + torch.arange(6).view(6, 1, 1, 1)
    mixed = mixstyle(h, alpha=0.1)
    assert mixed.shape == h.shape and not torch.allclose(mixed, h)
    # the normalised content is kept: each (image, channel) map is an affine function of the original
    for i in range(6):
        for c in range(3):
            a, b = h[i, c].flatten(), mixed[i, c].flatten()
            assert torch.corrcoef(torch.stack([a, b]))[0, 1] == pytest.approx(1.0, abs=1e-4)
    # new means lie between the batch's extremes
    means = mixed.mean(dim=(2, 3))
    assert means.min() >= h.mean(dim=(2, 3)).min() - 1e-4 and means.max() <= h.mean(dim=(2, 3)).max() + 1e-4


def test_two_views_share_the_clean_path_and_differ_after_mixstyle():
    model = tiny_net()
    model.eval()
    x = torch.rand(6, 1, 8, 8)
    for block in (0, 1):
        z, z_aug = model.two_views(x, block)
        torch.testing.assert_close(z, model.features(x))
        assert z_aug.shape == z.shape and not torch.allclose(z, z_aug)
