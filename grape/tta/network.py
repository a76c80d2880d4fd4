"""A small ResNet-style CNN trained from scratch, with the two views and the adaptive parameters of ITTA.

``features(x)`` runs the clean path: stem, residual blocks, each followed by its test-time stack f_Θ
(the identity until test time changes it), global average pooling. ``two_views(x)`` also runs an
augmented path that branches off after an early block through MixStyle (the release picks block 1 or 2
at random per batch; so do we), and returns the pooled features (z, z′) of both.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from grape.tta.affine import AffineStack
from grape.tta.mixstyle import mixstyle


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a shortcut (1x1 conv where the shape changes); ends in ReLU."""

    def __init__(self, channels_in: int, channels_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels_out)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or channels_in != channels_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(channels_in, channels_out, 1, stride, bias=False), nn.BatchNorm2d(channels_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class DomainNet(nn.Module):
    """Featurizer (stem + ``blocks`` residual blocks, width doubling after the first) and a linear classifier,
    plus ``adapters`` (f_Θ, one per block) shaped like each block's output, (C, H, W) element-wise as in the
    release, and ``weight`` (f_w) over the pooled feature vector."""

    def __init__(self, image_shape: tuple[int, int, int], classes: int, width: int = 16, blocks: int = 3,
                 adapter_depth: int = 5, weight_depth: int = 10, mixstyle_alpha: float = 0.1):  # fmt: skip
        super().__init__()
        channels = [width * 2**i for i in range(blocks)]
        self.stem = nn.Sequential(nn.Conv2d(image_shape[0], width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())  # fmt: skip
        self.blocks = nn.ModuleList(
            ResidualBlock(channels[max(i - 1, 0)], channels[i], 1 if i == 0 else 2) for i in range(blocks)
        )
        self.classifier = nn.Linear(channels[-1], classes)
        self.mixstyle_alpha = mixstyle_alpha
        with torch.no_grad():
            shapes = [tuple(h.shape[1:]) for h in self._block_outputs(torch.zeros(2, *image_shape))]
        self.adapters = nn.ModuleList(AffineStack(shape, adapter_depth) for shape in shapes)
        self.weight = AffineStack((channels[-1],), weight_depth)

    def network_parameters(self) -> list[nn.Parameter]:
        """Featurizer and classifier: what the network step trains (not f_w, not f_Θ)."""
        return [*self.stem.parameters(), *self.blocks.parameters(), *self.classifier.parameters()]

    def featurizer_parameters(self) -> list[nn.Parameter]:
        """Stem and blocks: the parameters whose gradients the w step aligns (the release's featurizer)."""
        return [*self.stem.parameters(), *self.blocks.parameters()]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, D): the clean path, through f_Θ after every block."""
        h = self.stem(x)
        for block, adapter in zip(self.blocks, self.adapters, strict=True):
            h = adapter(block(h))
        return h.mean(dim=(2, 3))

    def two_views(self, x: torch.Tensor, mix_after: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, C, H, W) -> z, z′ each (B, D): the augmented path shares the clean path up to block
        ``mix_after`` (0-based), applies MixStyle to that block's output, and runs the rest separately."""
        h = self.stem(x)
        h_aug = None
        for i, (block, adapter) in enumerate(zip(self.blocks, self.adapters, strict=True)):
            h = adapter(block(h))
            if h_aug is not None:
                h_aug = adapter(block(h_aug))
            if i == mix_after:
                h_aug = mixstyle(h, self.mixstyle_alpha)
        assert h_aug is not None, f"mix_after={mix_after} is not a block index"
        return h.mean(dim=(2, 3)), h_aug.mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> logits (B, classes), the clean path."""
        return self.classifier(self.features(x))

    def _block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        h, outputs = self.stem(x), []
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        return outputs


def freeze_batchnorm(model: nn.Module) -> None:
    """Put every BatchNorm in eval mode: normalise with the running statistics and never update them."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()
