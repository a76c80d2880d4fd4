"""The scorer's speed: measured while a run scores, recorded in its sidecar, read back to estimate a run's time.

A rate counts the tokens the engine processes per second of scoring: each packed piece's prompt once plus
its responses, the unit of the progress bar and of `grape score --dry-run`'s work count. Its seconds run
from the first chunk to the last part written (rendering, tokenising and saving included), not the model
load: an estimate made from it is the scoring time, the load comes on top.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EngineRate:
    tokens: int
    seconds: float
    device: str  # cpu | cuda: the kind of device the engine ran on
    workers: int = 1  # model replicas that shared the work (Ray), 1 for a run in one process

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)

    def record(self) -> dict[str, Any]:
        """The sidecar's ``rate`` block."""
        return {"tokens": self.tokens, "seconds": round(self.seconds, 3), "device": self.device,
                "workers": self.workers, "tokens_per_second": round(self.tokens_per_second, 1)}  # fmt: skip


class RateMeter:
    """Wrap a progress callback ``advance(candidates, tokens)``: count the tokens and the time from now."""

    def __init__(self, advance: Callable[[int, int], None], device: str):
        self._advance, self.device = advance, device
        self.started, self.tokens = time.perf_counter(), 0

    def advance(self, n_candidates: int, n_tokens: int) -> None:
        self.tokens += n_tokens
        self._advance(n_candidates, n_tokens)

    def rate(self) -> EngineRate:
        return EngineRate(self.tokens, time.perf_counter() - self.started, self.device)


def recorded_rate(meta: Mapping[str, Any], fingerprint: str, dtype: str) -> tuple[EngineRate | None, str]:
    """The rate a finished run recorded in its sidecar ``meta``, when it scored with the model ``fingerprint``
    in ``dtype``; else None and why not. A run in one process records a ``rate`` block; a Ray run is read
    from its per-worker token counts and its wall time."""
    model = meta.get("model") or {}
    if model.get("fingerprint") != fingerprint or model.get("dtype") != dtype:
        return None, "the previous run of this output scored with another model or dtype"
    if meta.get("rate"):
        block = meta["rate"]
        return EngineRate(int(block["tokens"]), float(block["seconds"]), block["device"], int(block["workers"])), ""
    ray = meta.get("ray") or {}
    tokens = sum(int(w.get("tokens", 0)) for w in (ray.get("per_worker") or {}).values())
    if tokens and ray.get("seconds"):
        device = "cuda" if ray.get("gpus_per_worker") else "cpu"
        return EngineRate(tokens, float(ray["seconds"]), device, int(ray.get("workers") or 1)), ""
    return None, "the previous run of this output recorded no rate (it scored nothing new, or predates rates)"
