"""The flags the training commands share (`grape sft`, `grape dpo`, `grape reward-model`), defined once.

Each flag defaults to None ("not given"), so that a value in ``--config`` stands unless the flag is given:
defaults < config file < command line. TRL's names of the same options (``--learning_rate``, ``--use_peft``,
...) are aliases of grape's. The help texts take their defaults from the settings class and its learning-rate
rule, so they say what the code does.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from grape.cli_options import add_resume_options, positive_int
from grape.errors import GrapeError
from grape.models.embedded import DEFAULT_TARGET
from grape.training.settings import PEFT_DEFAULT_R, SAVE_CHOICES
from grape.training.sft_config import parse_trainer_arg

# The settings fields these flags set (each command adds its own beside them).
TRAINER_FLAGS = ("model", "template", "eos", "epochs", "max_steps", "lr", "batch_size", "grad_accum", "max_length",
                 "lora_r", "precision", "gradient_checkpointing", "seed", "save_steps", "report_to", "device",
                 "resume")  # fmt: skip


@dataclass(frozen=True)
class TrainedOn:
    """How a command's help names what it trains on."""

    data: str  # "the selection", "the pairs"
    were: str  # its verb: "was", "were"
    unit: str  # what a batch counts: "examples", "pairs"
    longest: str  # what max_length bounds: "example", "prompt + response"


def add_trainer_flags(parser: argparse.ArgumentParser, defaults: Any, learning_rate: Callable[[Any], float],
                      on: TrainedOn) -> None:  # fmt: skip
    """The shared flags; ``defaults`` is the settings class's default instance, ``learning_rate`` its rule."""
    full, lora = (
        learning_rate(replace(defaults, lr=None, lora_r=0)),
        learning_rate(replace(defaults, lr=None, lora_r=8)),
    )
    add = parser.add_argument
    add("--model", "--model_name_or_path", dest="model", help=f"model to train. Default: the one {on.data} "
        f"{on.were} scored with (the .meta.json beside the file), else {DEFAULT_TARGET}")  # fmt: skip
    add("--template", help=f"prompt template. Default: the one {on.data} {on.were} scored with, else paper")
    add("--no-eos", dest="eos", action="store_const", const=False,
        help=f"responses without the end marker (EOS). Default: as {on.data} {on.were} scored")  # fmt: skip
    add("--epochs", "--num_train_epochs", dest="epochs", type=float,
        help=f"passes over {on.data}. Default: {defaults.epochs:g}")  # fmt: skip
    add("--max-steps", "--max_steps", dest="max_steps", type=int, help="optimizer steps; > 0 overrides --epochs")
    add("--lr", "--learning_rate", dest="lr", type=float,
        help=f"learning rate. Default: {_short(full)}, or {_short(lora)} with LoRA")  # fmt: skip
    add("--batch-size", "--per_device_train_batch_size", dest="batch_size", type=positive_int,
        help=f"{on.unit} per device per step. Default: {defaults.batch_size}")  # fmt: skip
    add("--grad-accum", "--gradient_accumulation_steps", dest="grad_accum", type=int,
        help=f"gradient accumulation steps. Default: {defaults.grad_accum}")  # fmt: skip
    add("--max-length", "--max_length", dest="max_length", type=int,
        help=f"longest {on.longest} in tokens (longer: an error, never cut). Default: the model's context")  # fmt: skip
    add("--lora-r", "--lora_r", dest="lora_r", type=int,
        help=f"LoRA rank (PEFT); 0 = full fine-tuning. Default: {defaults.lora_r}")  # fmt: skip
    add("--precision", choices=["auto", "bf16", "fp32"], help="auto: bf16 on a GPU that has it, fp32 on a CPU")
    add("--gradient-checkpointing", "--gradient_checkpointing", dest="gradient_checkpointing", action="store_const",
        const=True, help="keep only each layer's input for the backward pass and recompute the rest (one more "
        "forward pass per step). On long batches activations, not weights, fill memory: smollm2-135m (30 layers) "
        "keeps about 1.5 MB per token without it and 0.17 MB with it, so 16 sequences of 600 tokens need about "
        "15 GB without it and 5 GB with it (fp32, CPU)")  # fmt: skip
    add("--seed", type=int, help=f"seed of data order and initialisation. Default: {defaults.seed}")
    add("--save-steps", "--save_steps", dest="save_steps", type=int,
        help=f"checkpoint into OUTDIR/checkpoints every N steps. Default: {defaults.save_steps}")  # fmt: skip
    add("--report-to", "--report_to", dest="report_to", help="none, wandb, tensorboard, ... (transformers' "
        "integrations)")  # fmt: skip
    add("--device", help="auto, cpu or cuda. Default: auto")
    add_resume_options(parser)


def add_adapter_flags(parser: argparse.ArgumentParser, config_class: str) -> None:
    """``--use_peft`` (TRL's flag), ``--save`` and ``--trainer-arg`` (sft and dpo)."""
    parser.add_argument("--use_peft", "--use-peft", dest="use_peft", action="store_true",
                        help=f"train a LoRA adapter (TRL's flag): rank --lora_r, or {PEFT_DEFAULT_R} (TRL's "
                        "default) when no rank is set")  # fmt: skip
    parser.add_argument("--save", choices=SAVE_CHOICES, help="merged: the model with LoRA folded in; adapter: the "
                        "PEFT adapter only, in OUTDIR/adapter; both. Default: merged")  # fmt: skip
    parser.add_argument("--trainer-arg", dest="trainer_args", action="append", metavar="KEY=VALUE",
                        help=f"any other field of {config_class}, e.g. max_grad_norm=0.5 (repeatable; the value is "
                        "read as YAML; a `trainer:` mapping in --config does the same; applied last)")  # fmt: skip


def flag_values(args: argparse.Namespace, flags: tuple[str, ...]) -> dict[str, Any]:
    """The flags given, with ``--trainer-arg`` entries as the ``trainer`` mapping."""
    values = {name: getattr(args, name) for name in flags}
    trainer_args = getattr(args, "trainer_args", None)
    values["trainer"] = dict(parse_trainer_arg(text) for text in trainer_args) if trainer_args else None
    return values


def with_peft_rank(settings: Any, args: argparse.Namespace) -> Any:
    """``--use_peft``: LoRA at the rank given, or at TRL's default rank when none is set anywhere."""
    if not getattr(args, "use_peft", False):
        return settings
    if args.lora_r == 0:
        raise GrapeError("--use_peft with --lora_r 0: give a positive rank, or drop --use_peft")
    return replace(settings, lora_r=PEFT_DEFAULT_R) if settings.lora_r == 0 else settings


def _short(value: float) -> str:
    """1e-05 as 1e-5."""
    return f"{value:.0e}".replace("e-0", "e-")
