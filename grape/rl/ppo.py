"""PPO with a verifier's reward on top of a warm-up (SFT) model, as ReFT does it (`grape rl --algo ppo`).

Each step: take ``batch_size`` questions, sample one answer each from the policy (temperature 1), score the
answers with the verifier (1 right, 0.1 answered but wrong, 0 no answer), shape the rewards with a per-token
KL penalty against the warm-up model, estimate advantages with GAE on the value head, and fit
``ppo_epochs`` passes of the clipped PPO loss. LoRA or full fine-tuning; a checkpoint every ``save_steps``
rollout batches in OUTDIR/checkpoints, from which a re-run with the same settings resumes bit for bit
(grape.rl.checkpoint, grape.rl.resume).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import torch

from grape.console import console, progress_bar
from grape.models.cpu_heap import kept_heap
from grape.models.load import LoadedModel
from grape.rl.checkpoint import load_checkpoint, save_checkpoint
from grape.rl.outputs import CHECKPOINTS, Trained
from grape.rl.policy import build_policy, plain_model
from grape.rl.ppo_step import ppo_update
from grape.rl.prompts import Question, stop_ids
from grape.rl.reward import reward_function
from grape.rl.rollout import sample_rollouts
from grape.rl.settings import RLSettings
from grape.text import Renderer


def batch_rows(n_questions: int, batch_size: int, step: int, seed: int) -> list[int]:
    """The question indices of rollout batch ``step``: consecutive slices of a fresh shuffle per epoch."""
    rows = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, index = divmod(position, n_questions)
        order = torch.randperm(n_questions, generator=torch.Generator().manual_seed(seed * 100_003 + epoch))
        rows.append(int(order[index]))
    return rows


def total_steps(settings: RLSettings, n_questions: int) -> int:
    if settings.max_steps > 0:
        return settings.max_steps
    return max(1, math.ceil(settings.epochs * n_questions / settings.batch_size))


def train_ppo(
    loaded: LoadedModel,
    renderer: Renderer,
    questions: list[Question],
    settings: RLSettings,
    out: Path,
    resume_from: Path | None = None,
) -> Trained:
    """Run PPO on ``questions`` from ``loaded`` (trained in place), continuing from the checkpoint ``resume_from``
    (grape.rl.resume chose it) when given."""
    torch.manual_seed(settings.seed)
    reward = reward_function(settings.verifier, settings.partial_reward)
    policy = build_policy(loaded.model, settings.lora_r, settings.lora_alpha, settings.lora_targets)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sampler = torch.Generator(device=loaded.device).manual_seed(settings.seed)
    tokenizer, stops = loaded.tokenizer, stop_ids(renderer, loaded.tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    first, history = 0, []
    if resume_from is not None:
        state = load_checkpoint(resume_from, policy, optimizer, sampler)
        first, history = state["step"], state["history"]
        console.print(f"resumed from {resume_from} (step {first})")
    steps = total_steps(settings, len(questions))
    # on a CPU glibc's heap is kept: a step's large blocks are reused, not faulted afresh (grape.models.cpu_heap)
    with progress_bar() as bar, kept_heap(loaded.device.type == "cpu"):
        task = bar.add_task("PPO", total=steps, completed=first, rate="")
        for step in range(first, steps):
            batch = [questions[i] for i in batch_rows(len(questions), settings.batch_size, step, settings.seed)]
            tick = time.time()
            prompts = [q.prompt_ids for q in batch]
            rollouts = sample_rollouts(policy.model, prompts, max_new_tokens=settings.max_new_tokens, stop_ids=stops,
                                       pad_id=pad_id, generator=sampler,
                                       greedy=settings.rollout == "greedy")  # fmt: skip
            rollout_seconds = time.time() - tick
            texts = _response_texts(tokenizer, rollouts.response_ids, rollouts.response_mask)
            rewards = [reward(text, q.item) for text, q in zip(texts, batch, strict=True)]
            scores = torch.tensor([r.value for r in rewards])
            tick = time.time()
            stats = ppo_update(policy, optimizer, rollouts, scores, settings)
            stats.update(step=step + 1, rollout_seconds=rollout_seconds, update_seconds=time.time() - tick,
                         right=sum(r.kind == "right" for r in rewards) / len(rewards),
                         answered=sum(r.kind != "no_answer" for r in rewards) / len(rewards))  # fmt: skip
            history.append(stats)
            bar.update(task, advance=1, rate=f"reward {stats['reward']:.3f}  KL {stats['kl']:.3f}  "
                                             f"value loss {stats['value_loss']:.4f}")  # fmt: skip
            if (step + 1) % settings.save_steps == 0 or step + 1 == steps:
                save_checkpoint(out / CHECKPOINTS, step + 1, policy, optimizer, sampler, history)
    return Trained(plain_model(policy), history, resume_from, policy.value_head)


def _response_texts(tokenizer: Any, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    lengths = mask.sum(dim=1).long().tolist()
    return [tokenizer.decode(row[:n].tolist(), skip_special_tokens=True) for row, n in zip(ids, lengths, strict=True)]
