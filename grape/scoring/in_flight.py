"""Batches in flight: with two, a GPU runs one batch while the host builds and launches the next.

A CUDA stream runs its kernels in the order they were queued, so the host may queue batch i+1 before it reads
batch i's sums. Two things would make it wait for the device instead: a copy from pageable host memory (PyTorch
synchronizes the stream after one) and reading a result. So host tensors go to the device from pinned memory
without blocking (`to_device`), and each batch's sums come back into pinned memory, read only after an event
recorded behind them (`HostCopy`). Without that, the device sits idle while the host packs the next batch and
builds its mask (3% of a round with the dense mask, 11% with FlexAttention's block mask: docs/performance.md).
On a CPU every operation runs when it is called: one batch in flight, and the copies are plain ones. On a GPU
the default stays one batch until a GPU run measures two (`EngineSettings.batches_in_flight`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

import numpy as np
import torch

Item = TypeVar("Item")


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``; to a GPU from pinned memory, without the host waiting for the stream."""
    if device.type != "cuda":
        return tensor.to(device)
    return tensor.pin_memory().to(device, non_blocking=True)  # the pinned block is kept until the copy is done


class HostCopy:
    """A copy of a device tensor on the host, started when made and read by `result`, which waits for it."""

    def __init__(self, tensor: torch.Tensor):
        self.ready = None
        if tensor.device.type == "cuda":
            self.host = torch.empty(tensor.shape, dtype=tensor.dtype, pin_memory=True)
            self.host.copy_(tensor, non_blocking=True)
            self.ready = torch.cuda.Event()
            self.ready.record()  # on the current stream, behind the copy
        else:
            self.host = tensor.cpu()

    def result(self) -> np.ndarray:
        if self.ready is not None:
            self.ready.synchronize()
        return self.host.numpy()


def in_flight(
    items: Iterable[Item], launch: Callable[[Item], HostCopy], depth: int
) -> Iterator[tuple[Item, np.ndarray]]:
    """Each item with its launched result, in order, with up to ``depth`` items launched before the oldest one's
    result is read (``depth`` 1: launch, read, launch, read...)."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, not {depth}")
    pending: deque[tuple[Item, HostCopy]] = deque()
    for item in items:
        pending.append((item, launch(item)))
        if len(pending) == depth:
            oldest, copy = pending.popleft()
            yield oldest, copy.result()
    while pending:
        oldest, copy = pending.popleft()
        yield oldest, copy.result()
