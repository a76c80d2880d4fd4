"""The settings of `grape reward-model` (torch-free): a reward model r trained on preference pairs with TRL's
RewardTrainer, the r that `grape decode` (Transfer Q*, ARGS, best-of-n) steers by.

Kept apart from settings.py (sft's and dpo's), which other work edits at the same time; same conventions.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grape.errors import GrapeError
from grape.training.settings import check_schedule


@dataclass
class RewardModelSettings:
    # None: as the pairs were scored (their sidecar's score_settings), else DEFAULT_TARGET, paper, True
    model: str | None = None  # the causal LM under the sequence-classification head
    template: str | None = None  # the template r reads prompt + response with (`grape decode` uses it too)
    eos: bool | None = None  # a response ends with the end marker, as in scoring
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    lr: float | None = None  # None: 1e-4 with LoRA (TRL's RewardConfig default), 1e-5 for full fine-tuning
    lr_scheduler: str = "linear"
    warmup_ratio: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 8  # pairs per device per step (each pair is two sequences)
    grad_accum: int = 1
    max_length: int | None = None  # None: the model's context; a longer prompt + response is an error, never cut
    lora_r: int = 16  # LoRA rank (the head is trained in full); 0: full fine-tuning
    lora_alpha: int | None = None  # None: 2 * lora_r
    lora_dropout: float = 0.0
    lora_targets: str = "all-linear"
    center_rewards: float | None = None  # TRL's center_rewards_coefficient (e.g. 0.01): rewards near mean zero
    eval_pairs: str | None = None  # held-out pairs: loss and accuracy after training
    precision: str = "auto"  # auto | bf16 | fp32; auto = bf16 on a GPU that has it, fp32 on a CPU
    gradient_checkpointing: bool = False
    seed: int = 0  # data order and the head's initialisation
    logging_steps: int = 10
    save_steps: int = 100  # a checkpoint in OUTDIR/checkpoints every N steps (a re-run continues from the last)
    save_total_limit: int = 2
    # None: continue from OUTDIR/checkpoints if they were made with these settings (else stop with the keys that
    # differ); True: continue even so; False: delete the checkpoints, start afresh (as grape sft)
    resume: bool | None = None
    report_to: str = "none"
    device: str = "auto"
    trust_remote_code: bool = False
    trainer: dict[str, Any] = field(default_factory=dict)  # any other trl.RewardConfig field, applied last


# RewardConfig fields a setting above owns (refused in `trainer:`: one way to set each thing).
OWNED = ("output_dir", "num_train_epochs", "max_steps", "learning_rate", "lr_scheduler_type", "warmup_steps",
         "weight_decay", "per_device_train_batch_size", "gradient_accumulation_steps", "max_length", "bf16",
         "use_cpu", "gradient_checkpointing", "activation_checkpointing", "seed", "data_seed", "logging_steps",
         "report_to", "center_rewards_coefficient", "pad_token", "save_strategy", "save_steps", "save_total_limit",
         "resume_from_checkpoint")  # fmt: skip


def reward_learning_rate(settings: RewardModelSettings) -> float:
    if settings.lr is not None:
        return settings.lr
    return 1e-4 if settings.lora_r > 0 else 1e-5


def check_reward_model(settings: RewardModelSettings) -> None:
    """Reject settings that would fail deep inside the trainer with a less helpful message."""
    check_schedule(settings, reward_learning_rate(settings),
                   counts=("batch_size", "grad_accum", "logging_steps", "save_steps", "save_total_limit"))  # fmt: skip
    if settings.precision not in ("auto", "bf16", "fp32"):
        raise GrapeError(f"unknown precision '{settings.precision}': use auto, bf16 or fp32")
    owned = sorted(set(settings.trainer) & set(OWNED))
    if owned:
        raise GrapeError(f"trainer: {', '.join(owned)} set by grape's own settings; set them there")
