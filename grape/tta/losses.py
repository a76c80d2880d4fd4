"""The losses of ITTA as pure functions: the (learnable) consistency loss and the gradient-alignment penalty."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch.nn import functional as F


def consistency_loss(z: torch.Tensor, z_aug: torch.Tensor,
                     weight: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:  # fmt: skip
    """z, z′ (B, D) -> scalar mean((f_w(z′ − z))²); without ``weight`` the fixed loss mean((z′ − z)²).

    The mean over batch and features (the release's MSELoss), i.e. ‖f_w(z′ − z)‖² / (B·D)."""
    difference = z_aug - z
    mapped = weight(difference) if weight is not None else difference
    return mapped.pow(2).mean()


def two_view_cross_entropy(logits: torch.Tensor, logits_aug: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """logits, logits′ (B, K), y (B,) -> scalar CE(h(z), y) + CE(h(z′), y): the main loss of ITTA."""
    return F.cross_entropy(logits, y) + F.cross_entropy(logits_aug, y)


def zscored(values: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N,): (v − mean) / std with the mean and the (unbiased) std taken as constants, as the release
    does (``.item()``): the gradient flows through v only."""
    return (values - values.mean().detach()) / values.std().detach()


def alignment_penalty(consistency_grads: Sequence[torch.Tensor], main_grads: Sequence[torch.Tensor],
                      weight: float = 0.1) -> torch.Tensor:  # fmt: skip
    """Two lists of per-parameter gradients (same shapes) -> scalar
    ``weight · mean((zscore(g_consistency) − zscore(g_main).detach())²)`` over all their entries concatenated.

    ``consistency_grads`` must carry a graph to w (autograd.grad with create_graph=True), so that the penalty's
    gradient trains w; the main gradient is a fixed target."""
    if len(consistency_grads) != len(main_grads):
        raise ValueError(f"{len(consistency_grads)} consistency gradients against {len(main_grads)} main ones")
    g_consistency = torch.cat([g.reshape(-1) for g in consistency_grads])
    g_main = torch.cat([g.reshape(-1) for g in main_grads]).detach()
    return weight * (zscored(g_consistency) - zscored(g_main)).pow(2).mean()
