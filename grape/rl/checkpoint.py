"""PPO checkpoints: everything a resumed run needs to continue exactly as an uninterrupted one would.

One file per checkpoint, ``OUTDIR/checkpoints/step-000020.pt``: the trainable weights (the LoRA adapter, or
all of the model), the value head, the optimizer's moments, the step, the history of statistics, and the
random states (the sampler's generator and torch's global one, which orders the mini-batches). Written to
a temporary name and renamed, so a run killed mid-write leaves the previous checkpoint intact.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from grape.data.tables import write_atomically
from grape.errors import GrapeError
from grape.rl.policy import Policy

KEEP = 2  # checkpoints kept on disk (the newest)


def save_checkpoint(
    folder: Path, step: int, policy: Policy, optimizer: torch.optim.Optimizer, sampler: torch.Generator, history: list
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "trainable": {name: p.detach().cpu() for name, p in policy.model.named_parameters() if p.requires_grad},
        "value_head": policy.value_head.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler_rng": sampler.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "history": history,
    }
    path = folder / f"step-{step:06d}.pt"
    write_atomically(path, lambda handle: torch.save(state, handle))
    for old in checkpoints(folder)[:-KEEP]:
        old.unlink()
    return path


def checkpoints(folder: Path) -> list[Path]:
    """The complete checkpoints in ``folder``, oldest first."""
    return sorted(folder.glob("step-*.pt")) if folder.is_dir() else []


def load_checkpoint(
    path: Path, policy: Policy, optimizer: torch.optim.Optimizer, sampler: torch.Generator
) -> dict[str, Any]:
    """Restore ``path`` into the live objects; returns {"step", "history"}."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    trainable = dict(policy.model.named_parameters())
    if set(state["trainable"]) != {name for name, p in trainable.items() if p.requires_grad}:
        raise GrapeError(f"{path}: its weights do not match this model and LoRA setting (a checkpoint of another run)")
    with torch.no_grad():
        for name, tensor in state["trainable"].items():
            trainable[name].copy_(tensor)
    policy.value_head.load_state_dict(state["value_head"])
    optimizer.load_state_dict(state["optimizer"])
    sampler.set_state(state["sampler_rng"])
    torch.set_rng_state(state["torch_rng"])
    if state["cuda_rng"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda_rng"])
    return {"step": state["step"], "history": state["history"]}
