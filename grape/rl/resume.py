"""Whether an rl run continues from OUTDIR/checkpoints: sft's, dpo's and reward-model's rule (grape.training.resume).

``grape-rl.yaml`` (the resolved settings) is written before training starts, so beside the checkpoints it says how
they were made. With ``resume`` unset a re-run continues only when the settings that shape the run are the same
(those that may change, such as epochs, max_steps, save_steps and device, are grape.training.resume.MAY_CHANGE);
otherwise it stops with a one-line error naming the keys that differ, before it writes anything. ``resume: true``
continues anyway; ``false`` deletes the checkpoints and starts afresh (left in place, the rotation that keeps the
newest two and a later resume would mix the two runs).

Each algorithm resumes from its own newest complete checkpoint: PPO's ``step-N.pt`` files (grape.rl.checkpoint),
GRPO's trainer folders ``checkpoint-N`` (those whose trainer state was written, as sft's).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from grape.rl.checkpoint import checkpoints
from grape.rl.outputs import CHECKPOINTS, CONFIG_NAME
from grape.rl.settings import RLSettings
from grape.training.resume import last_checkpoint, refuse_other_settings


def newest_checkpoint(out: Path, algo: str) -> Path | None:
    """The newest complete checkpoint of ``algo`` in ``out``/checkpoints, or None."""
    folder = out / CHECKPOINTS
    if algo == "grpo":
        return last_checkpoint(folder)
    saved = checkpoints(folder)
    return saved[-1] if saved else None


def checkpoint_to_resume(out: Path, settings: RLSettings) -> Path | None:
    """The checkpoint a run of resolved ``settings`` into ``out`` continues from (None: from the start); reads only.
    Call it before the run's settings are written over the saved ones it compares them with."""
    checkpoint = newest_checkpoint(out, settings.algo)
    if checkpoint is None or settings.resume is False:
        return None
    if settings.resume is None:
        refuse_other_settings(out, settings, checkpoint, CONFIG_NAME)
    return checkpoint


def clear_checkpoints(out: Path, settings: RLSettings) -> None:
    """``resume: false``: delete ``out``/checkpoints, so that the new run's rotation and resume see only its own."""
    if settings.resume is False and (out / CHECKPOINTS).is_dir():
        shutil.rmtree(out / CHECKPOINTS)
