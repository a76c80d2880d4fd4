"""Training with the DomainBed protocol: balanced batches from every training domain, the checkpoint chosen
by accuracy on the training domains' validation rows (clean path, no test-time steps)."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from grape.tta.adapt import predictions
from grape.tta.data import DomainImages, Split
from grape.tta.network import DomainNet
from grape.tta.settings import TTASettings
from grape.tta.steps import TRAINING, network_step, weight_step


@dataclass
class Trained:
    model: DomainNet  # the chosen checkpoint
    best_step: int
    val_accuracy: float
    last_losses: dict[str, float]


def build_model(data: DomainImages, settings: TTASettings) -> DomainNet:
    return DomainNet(tuple(data.x.shape[1:]), data.classes, settings.width, settings.blocks,
                     settings.adapter_depth, settings.weight_depth, settings.mixstyle_alpha)  # fmt: skip


def train(data: DomainImages, split: Split, settings: TTASettings, rng: np.random.Generator) -> Trained:
    """Train ``settings.method``'s model from scratch (torch must be seeded by the caller)."""
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    model = build_model(data, settings)
    optimizer = torch.optim.Adam(model.network_parameters(), lr=settings.lr)
    weight_optimizer = torch.optim.Adam(model.weight.parameters(), lr=settings.lr * settings.weight_lr_ratio)
    domains = [split.train[data.domain[split.train] == d] for d in np.unique(data.domain[split.train])]
    best = (-1.0, 0, copy.deepcopy(model.state_dict()))
    losses: dict[str, float] = {}
    for step in range(1, settings.steps + 1):
        model.train()
        rows = np.concatenate([rng.choice(d, settings.batch_per_domain, replace=len(d) < settings.batch_per_domain)
                               for d in domains])  # fmt: skip
        batch_x, batch_y = x[rows], y[rows]
        losses = network_step(model, optimizer, batch_x, batch_y, settings.method)
        if TRAINING[settings.method] == "itta":
            losses["penalty"] = weight_step(model, weight_optimizer, batch_x, batch_y, settings.penalty_weight)
        if step % settings.eval_every == 0 or step == settings.steps:
            accuracy = float((predictions(model, x[split.val]) == y[split.val]).float().mean())
            if accuracy > best[0]:
                best = (accuracy, step, copy.deepcopy(model.state_dict()))
    model.load_state_dict(best[2])
    return Trained(model, best[1], best[0], losses)
