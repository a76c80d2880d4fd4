"""Test time: accuracy on a target domain, without adaptation or online with one optimiser step per batch.

- itta: network, classifier and f_w frozen; one Adam step on f_Θ (the stacks after each block) with the learned
  consistency loss mean((f_w(z′ − z))²) on the test batch's two views; then predict that batch with the clean path.
- ttt (naive test-time training): the fixed loss mean((z′ − z)²), and the step moves every featurizer parameter.
BatchNorm is frozen throughout (running statistics, no updates). Steps carry over from batch to batch (online);
whether the parameters also carry over from one domain to the next is the caller's choice (`Adapter.reset`).
"""

from __future__ import annotations

import copy

import numpy as np
import torch

from grape.tta.losses import consistency_loss
from grape.tta.network import DomainNet, freeze_batchnorm
from grape.tta.steps import random_mix_block


@torch.no_grad()
def predictions(model: DomainNet, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """(N, C, H, W) -> (N,) predicted classes, clean path, BatchNorm frozen, no adaptation."""
    model.eval()
    return torch.cat([model(x[i : i + batch]).argmax(dim=1) for i in range(0, len(x), batch)])


class Adapter:
    """A copy of a trained model that adapts online (``method`` ttt or itta) with Adam at ``lr``."""

    def __init__(self, trained: DomainNet, method: str, lr: float):
        if method not in ("ttt", "itta"):
            raise ValueError(f"no test-time steps for method {method!r}")
        self.trained, self.method, self.lr = trained, method, lr
        self.reset()

    def reset(self) -> None:
        """Start again from the trained model: f_Θ at the identity (itta) or the trained weights (ttt)."""
        self.model = copy.deepcopy(self.trained)
        self.model.requires_grad_(False)
        for adapter in self.model.adapters:
            adapter.reset()
        self.parameters = self.adapted_parameters()
        for parameter in self.parameters:
            parameter.requires_grad_(True)
        self.optimizer = torch.optim.Adam(self.parameters, lr=self.lr)

    def adapted_parameters(self) -> list[torch.nn.Parameter]:
        if self.method == "itta":
            return list(self.model.adapters.parameters())
        return self.model.featurizer_parameters()

    def step(self, x: torch.Tensor) -> float:
        """One optimiser step on the test batch x (B, C, H, W); returns the loss before the step."""
        self.model.eval()
        freeze_batchnorm(self.model)
        z, z_aug = self.model.two_views(x, random_mix_block(self.model))
        loss = consistency_loss(z, z_aug, self.model.weight if self.method == "itta" else None)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward(inputs=self.parameters)
        self.optimizer.step()
        return loss.item()

    def online_predictions(self, x: torch.Tensor, batch: int, order: np.ndarray) -> torch.Tensor:
        """(N, C, H, W) -> (N,) predictions: batches in ``order``, each predicted after its own step."""
        out = torch.empty(len(x), dtype=torch.long)
        for start in range(0, len(x), batch):
            rows = torch.as_tensor(order[start : start + batch])
            if len(rows) > 1:  # MixStyle needs another image to borrow a style from
                self.step(x[rows])
            out[rows] = predictions(self.model, x[rows])
        return out
