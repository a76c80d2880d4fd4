"""Whether a run continues from OUTDIR/checkpoints: never silently when the old run had other settings.

``grape-sft.yaml`` (``grape-dpo.yaml``: the resolved settings) is written before training starts, so beside
checkpoints it says how they were made. With ``resume`` unset a re-run continues only when the settings that shape the
trained weights are the same; otherwise it stops with a one-line error naming the keys that differ.
``--resume`` continues anyway; ``--no-resume`` deletes the old checkpoints and starts afresh (left in
place, the trainer's rotation and a later resume would mix the two runs).

A checkpoint that already holds the run's last step is not trained on (`run_to_end`): transformers would take one
step more from it, so a re-run of a finished run trained on and overwrote its model. The finished run is reported as
such and its outputs are left as they are; when they are missing (killed between its last checkpoint and the
save), they are written from that checkpoint, still without a step.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grape.config import settings_dict, write_settings
from grape.console import console
from grape.errors import GrapeError

CONFIG_NAME, CHECKPOINTS, TRAINER_STATE = "grape-sft.yaml", "checkpoints", "trainer_state.json"
# Settings a continued run may change: how long it runs, what it logs and keeps, where the output goes.
MAY_CHANGE = ("epochs", "max_steps", "resume", "save", "logging_steps", "save_steps", "save_total_limit",
              "report_to", "device")  # fmt: skip


def last_checkpoint(folder: Path) -> Path | None:
    """The newest checkpoint that was written completely (its trainer state is saved last)."""
    if not folder.is_dir():
        return None
    done = [p for p in folder.glob("checkpoint-*") if (p / TRAINER_STATE).is_file()]
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
    if not settings.resume:
        refuse_other_settings(out, settings, checkpoint, config_name)
    return checkpoint


def refuse_other_settings(out: Path, settings: Any, checkpoint: Path, config_name: str) -> None:
    """Raise a one-line GrapeError when ``checkpoint`` in ``out`` comes from a run whose settings (its saved
    ``config_name``) shape it otherwise than ``settings``; sft, dpo, reward-model and rl share the rule."""
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


@dataclass
class RunEnd:
    output: Any  # transformers' TrainOutput: of the training, or of the last checkpoint loaded as it is
    kept: dict[str, Any] | None  # a run finished before: the metrics of its done file, its outputs left as they are


def run_to_end(trainer: Any, checkpoint: Path | None, out: Path | None, done_name: str,
               outputs: Iterable[str] = ()) -> RunEnd:  # fmt: skip
    """Train with ``trainer`` from ``checkpoint`` (None: from the start) to the end of its run.

    A checkpoint that already reached the run's end is loaded into the trainer, not trained on. When the done
    file ``out/done_name`` and every one of ``outputs`` (names in ``out``) are there, the run is reported as
    finished and its metrics returned as ``kept``: the stage writes nothing. Otherwise the stage writes its
    outputs from the checkpoint's weights and state."""
    if checkpoint is None:
        return RunEnd(trainer.train(), None)
    step, end = checkpoint_step(checkpoint), planned_steps(trainer)
    if step < end:
        return RunEnd(trainer.train(resume_from_checkpoint=str(checkpoint)), None)
    output = loaded_checkpoint(trainer, checkpoint)
    done, reached = out / done_name, f"{checkpoint.name} reached the run's end (step {end})"
    if done.is_file() and all((out / name).exists() for name in outputs):
        console.print(f"{out}: already finished ({reached}); its model and {done_name} are left as they are "
                      "(--no-resume trains afresh)", highlight=False, soft_wrap=True)  # fmt: skip
        return RunEnd(output, json.loads(done.read_text())["metrics"])
    console.print(f"{out}: {reached} but its model was not saved: writing it from that checkpoint, without "
                  "training", highlight=False, soft_wrap=True)  # fmt: skip
    return RunEnd(output, None)


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer steps ``checkpoint`` holds."""
    return int(json.loads((checkpoint / TRAINER_STATE).read_text())["global_step"])


def planned_steps(trainer: Any) -> int:
    """The optimizer steps of the run ``trainer`` is set up for: its max_steps, or its epochs over the data
    (counted as the trainer counts them)."""
    if trainer.args.max_steps > 0:
        return trainer.args.max_steps
    return trainer.set_initial_training_values(trainer.args, trainer.get_train_dataloader())[-1]


def loaded_checkpoint(trainer: Any, checkpoint: Path) -> Any:
    """transformers' TrainOutput of the run in ``checkpoint``, its weights and state loaded into ``trainer`` as
    ``trainer.train`` loads them before its first step."""
    from transformers import TrainerState
    from transformers.trainer_utils import TrainOutput

    trainer._load_from_checkpoint(str(checkpoint))
    trainer.state = TrainerState.load_from_json(str(checkpoint / TRAINER_STATE))
    return TrainOutput(trainer.state.global_step, mean_logged_loss(trainer.state.log_history), {})


def mean_logged_loss(log_history: list[dict[str, Any]]) -> float | None:
    """The mean loss per step over the logged steps (each log holds the mean since the one before); None when
    no loss was logged."""
    total, before = 0.0, 0
    for log in (h for h in log_history if "loss" in h):
        total, before = total + log["loss"] * (log["step"] - before), log["step"]
    return total / before if before else None
