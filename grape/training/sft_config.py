"""TRL's `SFTConfig` from grape's settings, with any other of its fields passed through (``trainer:``).

Each grape setting sets one or two SFTConfig fields (`OWNED`); those fields are refused in ``trainer:``
(one way to set each thing, and ``grape-sft.yaml`` stays true). Every other SFTConfig field may be given
there (``--trainer-arg key=value`` or a ``trainer:`` mapping in the YAML) and is applied last, so it wins
over grape's choices for the fields grape sets without a setting (``disable_tqdm``, ``logging_first_step``,
``dataloader_num_workers``, ...).
"""

from __future__ import annotations

import dataclasses
import difflib
from functools import cache
from pathlib import Path
from typing import Any

from grape.errors import GrapeError

# SFTConfig field -> the grape setting (and its flag) that sets it.
OWNED = {
    "output_dir": "-o/--output_dir (checkpoints go to OUTDIR/checkpoints)",
    "num_train_epochs": "epochs (--num_train_epochs)",
    "max_steps": "max_steps (--max_steps)",
    "learning_rate": "lr (--learning_rate)",
    "lr_scheduler_type": "lr_scheduler",
    "warmup_steps": "warmup_ratio",
    "weight_decay": "weight_decay",
    "per_device_train_batch_size": "batch_size (--per_device_train_batch_size)",
    "gradient_accumulation_steps": "grad_accum (--gradient_accumulation_steps)",
    "bf16": "precision (--precision)",
    "use_cpu": "device (--device)",
    "padding_free": "padding_free (--no-padding-free)",
    "max_length": "max_length (--max_length; grape never cuts an example)",
    "completion_only_loss": "the loss (always on the response only)",
    "activation_checkpointing": "gradient_checkpointing",
    "gradient_checkpointing": "gradient_checkpointing",
    "seed": "seed (--seed)",
    "data_seed": "seed (--seed)",
    "logging_steps": "logging_steps",
    "save_steps": "save_steps (--save_steps)",
    "save_total_limit": "save_total_limit",
    "report_to": "report_to (--report_to)",
}


@cache
def sft_config_fields() -> frozenset[str]:
    from trl import SFTConfig

    return frozenset(f.name for f in dataclasses.fields(SFTConfig) if f.init)


def check_trainer_args(trainer: dict[str, Any]) -> None:
    """One line for the first key of ``trainer`` that is no SFTConfig field, or that a grape setting sets."""
    check_config_args(trainer, sft_config_fields(), OWNED, "trl.SFTConfig")


def check_config_args(trainer: dict[str, Any], known: frozenset[str], owned: dict[str, str], config: str) -> None:
    """One line for the first key of ``trainer`` that is not in ``known`` (the fields of ``config``), or that a
    grape setting sets (``owned``: field -> the setting)."""
    for key in trainer:
        if key in owned:
            raise GrapeError(f"trainer: {key} is set by grape's {owned[key]}; set it there")
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), 2)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise GrapeError(f"trainer: {key} is not a field of {config}{hint}")


def parse_trainer_arg(text: str) -> tuple[str, Any]:
    """``key=value`` from the command line; the value is read as YAML (``true``, ``0.1``, ``[a, b]``, text)."""
    import yaml

    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise GrapeError(f"--trainer-arg {text!r}: expected key=value, e.g. --trainer-arg max_grad_norm=0.5")
    try:
        return key.strip(), yaml.safe_load(value)
    except yaml.YAMLError:
        return key.strip(), value


def loop_args(settings: Any, device: Any) -> dict[str, Any]:
    """The training-loop arguments sft, dpo and reward-model share (transformers' TrainingArguments names), from
    their settings (epochs, steps, lr, schedule, batch, precision, seed, logging) and the device."""
    return dict(
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        learning_rate=settings.lr,
        lr_scheduler_type=settings.lr_scheduler,
        warmup_steps=settings.warmup_ratio,  # a float below 1 is a fraction of the steps
        weight_decay=settings.weight_decay,
        per_device_train_batch_size=settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        bf16=settings.precision == "bf16",
        use_cpu=device.type == "cpu",
        activation_checkpointing=settings.gradient_checkpointing,
        seed=settings.seed,
        data_seed=settings.seed,
        logging_steps=settings.logging_steps,
        logging_first_step=True,  # a loss to compare with, even in a run shorter than logging_steps
        report_to=settings.report_to,
        dataloader_num_workers=0,
        # transformers hides its bar whenever its log level is above WARNING, and grape keeps it at ERROR
        # (grape.models.load.quiet_transformers) to silence load-time advice: ask for the bar explicitly.
        disable_tqdm=False,
    )


def sft_config(settings: Any, device: Any, folder: Path, save: bool) -> Any:
    """The SFTConfig of a run of resolved ``settings`` (grape.training.settings.SFTSettings) on ``device``.

    ``folder`` receives the checkpoints; ``save`` is False when nothing is written (no checkpoints).
    """
    from trl import SFTConfig

    check_trainer_args(settings.trainer)
    args = loop_args(settings, device) | dict(
        output_dir=str(folder),
        padding_free=settings.padding_free,
        max_length=None,  # lengths were checked before: nothing is cut
        completion_only_loss=True,  # labels are -100 wherever completion_mask is 0
        save_strategy="steps" if save else "no",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
    )
    args.update(settings.trainer)
    try:
        return SFTConfig(**args)
    except (TypeError, ValueError) as exc:
        raise GrapeError(f"trainer: SFTConfig refused the settings: {str(exc).splitlines()[0]}") from exc
