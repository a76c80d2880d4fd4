"""Whether a run continues from OUTDIR/checkpoints: never silently when the old run had other settings.

``grape-sft.yaml`` (``grape-dpo.yaml``: the resolved settings) is written before training starts, so beside
checkpoints it says how they were made. With ``resume`` unset a re-run continues only when the settings that shape the
trained weights are the same; otherwise it stops with a one-line error naming the keys that differ.
``--resume`` continues anyway; ``--no-resume`` deletes the old checkpoints and starts afresh (left in
place, the trainer's rotation and a later resume would mix the two runs).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from grape.config import settings_dict, write_settings
from grape.errors import GrapeError

CONFIG_NAME, CHECKPOINTS = "grape-sft.yaml", "checkpoints"
# Settings a continued run may change: how long it runs, what it logs and keeps, where the output goes.
MAY_CHANGE = ("epochs", "max_steps", "resume", "save", "logging_steps", "save_steps", "save_total_limit",
              "report_to", "device")  # fmt: skip


def last_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was written completely (its trainer state is saved last)."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / "trainer_state.json").is_file()]
    return max(done, key=lambda p: int(p.name.split("-")[-1]), default=None)


def changed_settings(old: dict[str, Any], new: Any) -> list[str]:
    """The keys, outside MAY_CHANGE, whose value in ``new`` (SFTSettings or DPOSettings) differs from the saved
    ``old`` (absent = default)."""
    defaults, current = settings_dict(type(new)()), settings_dict(new)
    return [key for key in current
            if key not in MAY_CHANGE and old.get(key, defaults[key]) != current[key]]  # fmt: skip


def checkpoint_to_resume(out: Path, settings: Any, config_name: str = CONFIG_NAME) -> Path | None:
    """The checkpoint a run of resolved ``settings`` into ``out`` continues from (None: from the start).
    ``config_name``: the stage's resolved settings file beside the checkpoints (grape-sft.yaml, grape-dpo.yaml)."""
    checkpoint = last_checkpoint(out / CHECKPOINTS)
    if checkpoint is None:
        return None
    if settings.resume is False:
        if int(os.environ.get("RANK", "0")) == 0:  # one deleter under `accelerate launch`
            shutil.rmtree(out / CHECKPOINTS)
        return None
    if settings.resume:
        return checkpoint
    saved = out / config_name
    if not saved.is_file():
        raise GrapeError(f"{out}: has checkpoints but no {config_name} saying how they were made; "
                         f"--resume to continue from {checkpoint.name}, --no-resume to start afresh")  # fmt: skip
    try:
        old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise GrapeError(f"{saved}: invalid YAML ({str(exc).splitlines()[0]})") from exc
    changed = changed_settings(old, settings)
    if changed:
        raise GrapeError(
            f"{out}: its checkpoints come from a run with other settings ({', '.join(changed)}); "
            f"--resume to continue from {checkpoint.name} anyway, --no-resume to start afresh"
        )
    return checkpoint


def start_run(out: Path | None, settings: Any, command: str, file: str | Path,
              config_name: str = CONFIG_NAME) -> tuple[Path | None, str]:  # fmt: skip
    """Begin a training run into ``out``: the checkpoint it continues from (None: from the start) and the command
    that reruns it (``grape COMMAND FILE -o OUT --config OUT/CONFIG_NAME``), which heads the resolved settings
    written beside the checkpoints (by rank 0 only under ``accelerate launch``). No ``out``: (None, "")."""
    if out is None:
        return None, ""
    checkpoint = checkpoint_to_resume(out, settings, config_name)
    rerun = f"grape {command} {file} -o {out} --config {out / config_name}"
    if int(os.environ.get("RANK", "0")) == 0:
        write_settings(settings, out / config_name, header=rerun)
    return checkpoint, rerun
