"""Element-wise affine stacks: f_w (the learnable consistency loss) and f_Θ (the test-time parameters)."""

from __future__ import annotations

import torch
from torch import nn


class AffineStack(nn.Module):
    """``depth`` element-wise affine layers a_i ⊙ x + b_i over a fixed ``shape``, ReLU between them (not after
    the last), a_i = 1 and b_i = 0 at the start, as in the ITTA release.

    So at the start the stack is the identity on inputs ≥ 0 (a block's output after its ReLU: f_Θ) and
    relu(x) on signed inputs when depth ≥ 2 (the feature difference z′ − z that f_w sees), as in the release.
    """

    def __init__(self, shape: tuple[int, ...], depth: int):
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth must be at least 1, got {depth}")
        self.scales = nn.ParameterList(nn.Parameter(torch.ones(shape)) for _ in range(depth))
        self.shifts = nn.ParameterList(nn.Parameter(torch.zeros(shape)) for _ in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, *shape) -> (B, *shape)."""
        last = len(self.scales) - 1
        for i, (scale, shift) in enumerate(zip(self.scales, self.shifts, strict=True)):
            x = scale * x + shift
            if i < last:
                x = torch.relu(x)
        return x

    def reset(self) -> None:
        """Back to the identity parameters (a new target domain starts from here)."""
        with torch.no_grad():
            for scale, shift in zip(self.scales, self.shifts, strict=True):
                scale.fill_(1.0)
                shift.zero_()
