"""The settings of `grape rl`: PPO with a value head and a verifier's reward (ReFT's defaults), or GRPO.

``algo: grpo`` runs TRL's GRPOTrainer on the same questions, ids and reward: ``num_generations`` answers per
question, advantages relative to the group. It reads ``batch_size`` (questions per rollout batch),
``mini_batch_size`` (questions per optimizer step), ``ppo_epochs`` (GRPO's μ), ``kl_coef`` (β of the k3 KL
term in the loss, not a reward penalty), ``clip_ratio`` (ε) and ``aggregation`` (sequence: TRL's
``loss_type="grpo"``; token: ``"dapo"``); ``gamma``, ``lam``, ``clip_value``, ``value_coef`` and
``whiten_advantages`` are PPO's only (GRPO has no value head).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from grape.errors import GrapeError
from grape.rl.aggregations import AGGREGATIONS

ALGORITHMS = ("ppo", "grpo")
ROLLOUTS = ("sample", "greedy")
ON_ERROR = ("fail", "skip")


@dataclass
class RLSettings:
    algo: str = "ppo"  # ppo: our loop with a value head (ReFT) | grpo: TRL's GRPOTrainer, group-relative advantages
    # the warm-up (SFT) model: the policy starts here and it stays the reference. None: the model the questions'
    # sidecar names (`grape tools prepare --model`, a selection's scoring), else grape's default model
    # (grape.rl.model_defaults)
    model: str | None = None
    template: str | None = None  # None: the one grape trained the model with, else the sidecar's, else paper
    eos: bool | None = None  # None: the sidecar's, else True
    verifier: str = "math"  # a name of grape.verification.registry.NAMES: math | number | regex:PATTERN | ...
    prompt_column: str = "prompt"  # a string or chat messages
    answer_column: str = "answer"  # copied to the item's `answer`, which the verifier reads
    partial_reward: float = 0.1  # an answer was extracted (or the program ran) but it is wrong
    # rollouts: one sample per prompt at temperature 1, top-k 0, top-p 1 (the policy's own distribution: ReFT),
    # or the policy's greedy answer (TL-Training); PPO only (GRPO's group needs different answers)
    rollout: str = "sample"  # sample | greedy
    max_prompt_tokens: int = 512  # a longer prompt is refused (on_error fail) or left out (skip), never cut
    on_error: str = "fail"  # fail: stop at the first question rl cannot use; skip: leave it out, counted
    max_new_tokens: int = 300  # answers are cut here; the score then falls on the last token
    batch_size: int = 8  # prompts per rollout batch (PPO: one rollout each; GRPO: num_generations each)
    num_generations: int = 8  # GRPO: answers sampled per question, the group its advantages are relative to
    mini_batch_size: int | None = None  # prompts (with their rollouts) per optimizer step; None: the whole batch
    micro_batch_size: int | None = None  # rollouts per forward/backward pass (gradients accumulate); None: mini
    ppo_epochs: int = 2  # passes over each rollout batch
    epochs: float = 1.0  # passes over the prompts
    max_steps: int = -1  # rollout batches; > 0 overrides epochs
    # the objective
    kl_coef: float = 0.05  # β: 0.05 for natural-language chains of thought, 0.01 for programs (ReFT)
    gamma: float = 1.0
    lam: float = 0.95
    clip_ratio: float = 0.2
    clip_value: float = 0.2
    value_coef: float = 5.0
    aggregation: str = "sequence"  # sequence: mean of per-sequence means (ReFT) | token: mean over tokens
    whiten_advantages: bool = True
    # optimisation: AdamW, constant learning rate, gradient clipping, dropout off
    lr: float | None = None  # None: 1e-6 for full fine-tuning, 1e-5 with LoRA
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    lora_r: int = 0  # 0: full fine-tuning; > 0: LoRA, and the reference is the model with the adapter off
    lora_alpha: int | None = None  # None: 2 * lora_r
    lora_targets: str = "all-linear"
    seed: int = 0
    save_steps: int = 20  # checkpoint every N rollout batches (and at the end)
    # None: continue from OUTDIR/checkpoints if they were made with these settings (else stop with the keys that
    # differ); True: continue even so; False: delete the checkpoints, start afresh (grape.rl.resume)
    resume: bool | None = None
    dtype: str = "float32"  # float32 | bfloat16 | auto; the value head and the losses are float32 always
    device: str = "auto"
    trust_remote_code: bool = False


def learning_rate(settings: RLSettings) -> float:
    if settings.lr is not None:
        return settings.lr
    return 1e-5 if settings.lora_r > 0 else 1e-6


def resolved(settings: RLSettings) -> RLSettings:
    """The settings with the automatic choices made (learning rate, LoRA alpha), as saved beside the model."""
    alpha = (settings.lora_alpha or 2 * settings.lora_r) if settings.lora_r else None
    return dataclasses.replace(settings, lr=learning_rate(settings), lora_alpha=alpha)


def check(settings: RLSettings) -> None:
    """Reject settings that would fail deep inside the loop with a less helpful message."""
    if settings.algo not in ALGORITHMS:
        raise GrapeError(f"unknown algo '{settings.algo}': use one of {', '.join(ALGORITHMS)}")
    if settings.rollout not in ROLLOUTS:
        raise GrapeError(f"unknown rollout '{settings.rollout}': use one of {', '.join(ROLLOUTS)}")
    if settings.on_error not in ON_ERROR:
        raise GrapeError(f"unknown on_error '{settings.on_error}': use one of {', '.join(ON_ERROR)}")
    if settings.algo == "grpo" and settings.rollout == "greedy":
        raise GrapeError("rollout greedy is PPO's: GRPO's advantages compare several sampled answers per question")
    if settings.algo == "grpo" and settings.num_generations < 2:
        raise GrapeError("num_generations must be at least 2: GRPO's advantage is relative to the other answers")
    for name in ("batch_size", "ppo_epochs", "save_steps", "max_new_tokens", "max_prompt_tokens"):
        if getattr(settings, name) < 1:
            raise GrapeError(f"{name} must be at least 1")
    mini = settings.mini_batch_size
    if mini is not None and (mini < 1 or settings.batch_size % mini):
        raise GrapeError(f"mini_batch_size {mini} must divide batch_size {settings.batch_size}")
    micro, per_step = settings.micro_batch_size, mini or settings.batch_size
    if micro is not None and (micro < 1 or per_step % micro):
        raise GrapeError(f"micro_batch_size {micro} must divide the mini-batch ({per_step})")
    if settings.max_steps <= 0 and settings.epochs <= 0:
        raise GrapeError("set epochs > 0 or max_steps > 0")
    if settings.aggregation not in AGGREGATIONS:
        raise GrapeError(f"unknown aggregation '{settings.aggregation}': use one of {', '.join(AGGREGATIONS)}")
    if settings.lora_r < 0:
        raise GrapeError("lora_r must be 0 (full fine-tuning) or positive")
    if learning_rate(settings) <= 0:
        raise GrapeError("lr must be positive")
    if settings.kl_coef < 0 or not 0 <= settings.lam <= 1 or not 0 <= settings.gamma <= 1:
        raise GrapeError("kl_coef must be ≥ 0, gamma and lam in [0, 1]")


def check_question_count(settings: RLSettings, n_questions: int) -> None:
    """Reject a batch the questions cannot fill: GRPO takes whole batches of distinct questions."""
    if settings.algo == "grpo" and settings.batch_size > n_questions:
        raise GrapeError(f"batch_size {settings.batch_size} is more than the {n_questions} questions: GRPO takes "
                         "whole batches of distinct questions")  # fmt: skip
