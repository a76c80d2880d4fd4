"""The settings of `grape sft`, and how the ones left on ``auto`` are resolved for this machine."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grape.errors import GrapeError
from grape.models.embedded import DEFAULT_TARGET
from grape.training.objectives import OBJECTIVES


@dataclass
class SFTSettings:
    # None: as the selection was scored (its sidecar's score_settings), else DEFAULT_TARGET, paper, True
    model: str | None = None
    template: str | None = None  # must be the template the selection was scored with
    eos: bool | None = None
    loss: str = "nll"  # the objective, a name of grape.training.objectives.OBJECTIVES (nll | weighted | ...)
    ift_lambda: float = 0.2  # loss ift: λ, the share of the model's own prediction in a response token's input
    ift_gamma: float = 0.95  # loss ift: γ, the discount of the later losses that weigh a token (0: weights 1)
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float | None = None  # None: 2e-5 for full fine-tuning, 1e-4 with LoRA
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 8  # per device
    grad_accum: int = 1
    max_length: int | None = None  # None: the model's context; longer examples are an error, never cut
    lora_r: int = 0  # 0: full fine-tuning; `--use_peft` alone means PEFT_DEFAULT_R
    lora_alpha: int | None = None  # None: 2 * lora_r
    lora_dropout: float = 0.0
    lora_targets: str = "all-linear"
    padding_free: bool = True  # pack each batch into one row (block-diagonal attention), no pad tokens
    precision: str = "auto"  # auto | bf16 | fp32; auto = bf16 on a GPU that has it, fp32 on a CPU
    gradient_checkpointing: bool = False
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 100
    save_total_limit: int = 2
    # None: continue from the last complete checkpoint in OUTDIR/checkpoints if it was made with these settings
    # (else stop with the keys that differ); True: continue even so; False: delete the checkpoints, start afresh
    resume: bool | None = None
    save: str = "merged"  # merged (LoRA folded in) | adapter (OUTDIR/adapter, PEFT's files) | both
    report_to: str = "none"  # none | wandb | tensorboard | ... (any of transformers' integrations)
    device: str = "auto"
    trust_remote_code: bool = False
    trainer: dict[str, Any] = field(default_factory=dict)  # any other SFTConfig field, applied last


# The rank `--use_peft` gives when no rank is set: TRL's own default (trl.ModelConfig.lora_r).
PEFT_DEFAULT_R = 16
SAVE_CHOICES = ("merged", "adapter", "both")
DEFAULTS_WITHOUT_SIDECAR = {"model": DEFAULT_TARGET, "template": "paper", "eos": True}


def learning_rate(settings: SFTSettings) -> float:
    if settings.lr is not None:
        return settings.lr
    return 1e-4 if settings.lora_r > 0 else 2e-5


def use_bf16(settings: SFTSettings, device: Any) -> bool:
    """Mixed precision: fp32 master weights, bf16 autocast for the matmuls.

    ``auto`` is bf16 on a GPU that has it, fp32 on a CPU, even one with AMX: there a large bf16 matmul
    alone runs ~4x faster, but a whole LoRA step of gemma-3-270m under autocast (weights cast on every
    step, the loss over Gemma's 262k vocabulary in fp32 anyway) measured between 1.8x slower and 1.3x
    faster on a loaded 2-core machine, and it changes the losses (docs/experiments.md). Not a clear
    enough win to be the default; ``--precision bf16`` asks for it.
    """
    if settings.precision == "auto":
        import torch

        return device.type == "cuda" and torch.cuda.is_bf16_supported()
    if settings.precision in ("bf16", "bfloat16"):
        return True
    if settings.precision in ("fp32", "float32"):
        return False
    raise GrapeError(f"unknown precision '{settings.precision}': use auto, bf16 or fp32")


COUNTED = ("batch_size", "grad_accum", "logging_steps", "save_steps", "save_total_limit")  # each at least 1


def check_schedule(settings, lr: float, counts: tuple[str, ...] = COUNTED) -> None:
    """The checks every trainer's settings share (sft, dpo, reward-model): step counts, epochs or steps, LoRA rank,
    warm-up and the resolved learning rate ``lr``."""
    for name in counts:
        if getattr(settings, name) < 1:
            raise GrapeError(f"{name} must be at least 1")
    if settings.max_steps <= 0 and settings.epochs <= 0:
        raise GrapeError("set epochs > 0 or max_steps > 0")
    if settings.lora_r < 0:
        raise GrapeError("lora_r must be 0 (full fine-tuning) or positive")
    if not 0 <= settings.warmup_ratio < 1:
        raise GrapeError("warmup_ratio must be in [0, 1)")
    if lr <= 0:
        raise GrapeError("lr must be positive")


def check(settings: SFTSettings) -> None:
    """Reject settings that would fail deep inside the trainer with a less helpful message."""
    check_schedule(settings, learning_rate(settings))
    if settings.loss not in OBJECTIVES:
        raise GrapeError(f"unknown loss '{settings.loss}': use one of {', '.join(OBJECTIVES)}")
    if not (0 <= settings.ift_lambda <= 1 and 0 <= settings.ift_gamma <= 1):
        raise GrapeError("ift_lambda and ift_gamma must be in [0, 1]")
    if settings.save not in SAVE_CHOICES:
        raise GrapeError(f"unknown save '{settings.save}': use one of {', '.join(SAVE_CHOICES)}")
    if settings.save != "merged" and settings.lora_r == 0:
        raise GrapeError(f"save {settings.save} writes a PEFT adapter: train one with --use_peft or --lora-r N")
    if settings.trainer:  # only then: checking the names imports trl (and torch)
        from grape.training.sft_config import check_trainer_args

        check_trainer_args(settings.trainer)


@dataclass
class DPOSettings:
    """The settings of `grape dpo`: preference optimisation on pairs, DPO (TRL's DPOTrainer) or SimPO (TRL's
    experimental CPOTrainer). The training fields mean what they mean in `SFTSettings`."""

    # None: as the pairs were scored (their sidecar's score_settings), else DEFAULT_TARGET, paper, True
    model: str | None = None
    template: str | None = None
    eos: bool | None = None
    loss: str = "dpo"  # dpo | simpo
    ref: str | None = None  # dpo's reference model; None: the model before training (LoRA: adapter disabled)
    beta: float | None = None  # None: 0.1 for dpo (TRL's default), 2.0 for simpo (the SimPO paper's range 2.0-2.5)
    gamma: float = 0.5  # simpo's target reward margin (TRL's simpo_gamma)
    cpo_alpha: float = 0.0  # simpo: weight of the chosen responses' NLL added to the loss (TRL's CPO term; 0 = SimPO)
    epochs: float = 1.0
    max_steps: int = -1
    lr: float | None = None  # None: 1e-6 for full fine-tuning (TRL's DPO default), 1e-5 with LoRA
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 8  # pairs per device per step (each pair is two sequences)
    grad_accum: int = 1
    max_length: int | None = None  # None: the model's context; a longer prompt + response is an error, never cut
    lora_r: int = 0
    lora_alpha: int | None = None
    lora_dropout: float = 0.0
    lora_targets: str = "all-linear"
    precision: str = "auto"
    gradient_checkpointing: bool = False
    seed: int = 0
    logging_steps: int = 10
    save_steps: int = 100
    save_total_limit: int = 2
    resume: bool | None = None
    save: str = "merged"
    report_to: str = "none"
    device: str = "auto"
    trust_remote_code: bool = False
    trainer: dict[str, Any] = field(default_factory=dict)  # any other DPOConfig (dpo) or CPOConfig (simpo) field


PREFERENCE_LOSSES = ("dpo", "simpo")


def preference_beta(settings: DPOSettings) -> float:
    if settings.beta is not None:
        return settings.beta
    return 2.0 if settings.loss == "simpo" else 0.1


def preference_learning_rate(settings: DPOSettings) -> float:
    if settings.lr is not None:
        return settings.lr
    return 1e-5 if settings.lora_r > 0 else 1e-6


def check_dpo(settings: DPOSettings) -> None:
    """Reject settings that would fail deep inside the trainer with a less helpful message."""
    if settings.loss not in PREFERENCE_LOSSES:
        raise GrapeError(f"unknown loss '{settings.loss}': use dpo or simpo")
    check_schedule(settings, preference_learning_rate(settings))
    if preference_beta(settings) <= 0:
        raise GrapeError("beta must be positive")
    if settings.ref is not None and settings.loss == "simpo":
        raise GrapeError("simpo has no reference model: drop ref (or use --loss dpo)")
    if settings.save not in SAVE_CHOICES:
        raise GrapeError(f"unknown save '{settings.save}': use one of {', '.join(SAVE_CHOICES)}")
    if settings.save != "merged" and settings.lora_r == 0:
        raise GrapeError(f"save {settings.save} writes a PEFT adapter: train one with --use_peft or --lora-r N")
    if settings.trainer:  # only then: checking the names imports trl (and torch)
        from grape.training.preference_config import check_preference_trainer_args

        check_preference_trainer_args(settings.loss, settings.trainer)
