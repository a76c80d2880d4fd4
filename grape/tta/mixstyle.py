"""MixStyle (Zhou et al., ICLR 2021), the augmentation that makes ITTA's second view."""

from __future__ import annotations

import torch


def mixstyle(h: torch.Tensor, alpha: float = 0.1, eps: float = 1e-6) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H, W): each image's per-channel mean and std (detached) replaced by a mix
    λ·own + (1 − λ)·another image's of the batch (a random permutation), λ ~ Beta(α, α) per image.
    Draws come from torch's global generator (seeded once per run)."""
    batch = h.shape[0]
    mu = h.mean(dim=(2, 3), keepdim=True).detach()
    sigma = (h.var(dim=(2, 3), keepdim=True) + eps).sqrt().detach()
    lam = torch.distributions.Beta(alpha, alpha).sample((batch,)).to(h).view(batch, 1, 1, 1)
    perm = torch.randperm(batch)
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sigma_mix = lam * sigma + (1 - lam) * sigma[perm]
    return (h - mu) / sigma * sigma_mix + mu_mix
