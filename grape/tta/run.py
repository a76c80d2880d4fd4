"""`tta()`: train one method with one domain held out, measure it on that domain, write rows and a sidecar.

Rows (one per way of predicting): ``none`` (the chosen checkpoint as is); for ttt and itta also ``reset``
(test-time steps online over the target, starting from the trained model) and ``carry`` (the same steps
carried on from the training domains' validation rows, domain by domain, before the target: the release
never resets its test-time parameters). itta-no-tt is itta's training with ``none`` only.
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grape.config import with_overrides
from grape.data.tables import write_rows, write_sidecar
from grape.errors import GrapeError, file_system_error
from grape.tta.adapt import Adapter, predictions
from grape.tta.data import leave_one_out, load_domains
from grape.tta.settings import ADAPTING, METHODS, TTASettings
from grape.tta.train import train


def tta(output: str | Path | None = None, settings: TTASettings | None = None, **overrides: Any) -> dict[str, Any]:
    """Run ``settings`` (or the defaults with ``overrides``); returns the metrics, also written under ``output``."""
    settings = with_overrides(TTASettings, settings, overrides)
    if settings.method not in METHODS:
        raise GrapeError(f"--method: expected one of {', '.join(METHODS)}, got {settings.method!r}")
    if output is not None:  # a file where the folder goes is refused now, not after the training
        try:
            Path(output).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise file_system_error(output, exc) from exc
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    data = load_domains(settings.data, settings.data_seed)
    split = leave_one_out(data, settings.heldout, settings.val_fraction, settings.seed)
    trained = train(data, split, settings, rng)
    x, y = torch.from_numpy(data.x), torch.from_numpy(data.y)
    target = torch.from_numpy(split.target)
    accuracies = {"none": accuracy(predictions(trained.model, x[target]), y[target])}
    if settings.method in ADAPTING:
        adapter = Adapter(trained.model, settings.method, settings.lr * settings.test_lr_ratio)
        order = rng.permutation(len(target))
        accuracies["reset"] = accuracy(adapter.online_predictions(x[target], settings.test_batch, order), y[target])
        adapter.reset()
        for d in np.unique(data.domain[split.val]):
            rows = torch.from_numpy(split.val[data.domain[split.val] == d])
            adapter.online_predictions(x[rows], settings.test_batch, rng.permutation(len(rows)))
        accuracies["carry"] = accuracy(adapter.online_predictions(x[target], settings.test_batch, order), y[target])
    metrics = {"method": settings.method, "heldout": settings.heldout, "seed": settings.seed,
               "accuracy": accuracies, "target_images": len(target), "train_images": len(split.train),
               "val_images": len(split.val), "val_accuracy": trained.val_accuracy, "best_step": trained.best_step,
               "last_losses": trained.last_losses, "seconds": round(time.perf_counter() - started, 2)}  # fmt: skip
    if output is not None:
        rows = [{"method": settings.method, "heldout": settings.heldout, "seed": settings.seed, "mode": mode,
                 "accuracy": value, "n": len(target)} for mode, value in accuracies.items()]  # fmt: skip
        path = write_rows(rows, Path(output) / "accuracy.jsonl")
        write_sidecar(path, {"stage": "tta", "settings": dataclasses.asdict(settings), "metrics": metrics})
    return metrics


def accuracy(predicted: torch.Tensor, y: torch.Tensor) -> float:
    """(N,), (N,) -> the fraction predicted right."""
    return float((predicted == y).float().mean())
