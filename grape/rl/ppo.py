"""`grape rl`: PPO with a verifier's reward on top of a warm-up (SFT) model, as ReFT does it.

Each step: take ``batch_size`` questions, sample one answer each from the policy (temperature 1), score the
answers with the verifier (1 right, 0.1 answered but wrong, 0 no answer), shape the rewards with a per-token
KL penalty against the warm-up model, estimate advantages with GAE on the value head, and fit
``ppo_epochs`` passes of the clipped PPO loss. LoRA or full fine-tuning; checkpoints and resume.

OUTDIR holds, when done: the policy (LoRA merged in) and tokenizer as a plain transformers directory,
``value_head.pt``, ``grape-rl.yaml`` (the resolved settings; ``--config`` takes it back), ``rl-history.jsonl``
(one line of statistics per step), ``grape-rl.json`` (what was run, on which model, with which versions)
and ``checkpoints/`` (a re-run with the same OUTDIR resumes from the newest).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grape.config import settings_dict, with_overrides, write_settings
from grape.console import console, progress_bar
from grape.data.output_lock import OutputLock
from grape.data.tables import package_versions
from grape.models.load import LoadedModel, load_model
from grape.rl.checkpoint import checkpoints, load_checkpoint, save_checkpoint
from grape.rl.policy import Policy, build_policy, plain_model
from grape.rl.ppo_step import ppo_update
from grape.rl.prompts import Question, read_questions
from grape.rl.reward import reward_function
from grape.rl.rollout import sample_rollouts
from grape.rl.settings import RLSettings, check, resolved
from grape.text import Renderer

CONFIG_NAME, DONE_NAME, HISTORY_NAME, CHECKPOINTS = "grape-rl.yaml", "grape-rl.json", "rl-history.jsonl", "checkpoints"


@dataclass
class RLResult:
    output_dir: Path
    model: Any  # the trained policy as a plain transformers model (LoRA merged in)
    value_head: torch.nn.Linear
    settings: RLSettings  # resolved: the learning rate and LoRA alpha filled in
    history: list[dict[str, float]]  # one entry per rollout batch
    metrics: dict[str, Any]


def rl(data: str | Path, output_dir: str | Path, settings: RLSettings | None = None, **overrides: Any) -> RLResult:
    """Run PPO on the questions in ``data`` (rows with a prompt and the gold answer the verifier reads).

    ``overrides`` set fields of `RLSettings`, e.g. ``rl("train.jsonl", "out", verifier="number", max_steps=50)``.
    """
    settings = with_overrides(RLSettings, settings, overrides)
    check(settings)
    settings = resolved(settings)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out):
        loaded = load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
        renderer = Renderer(loaded.tokenizer, settings.template, settings.eos)
        answer_required = not settings.verifier.startswith(("code", "python:", "regex:"))
        questions = read_questions(data, renderer, settings.prompt_column, settings.answer_column,
                                   settings.max_prompt_tokens, answer_required)  # fmt: skip
        write_settings(settings, out / CONFIG_NAME, header=f"grape rl {data} -o {out} --config {out / CONFIG_NAME}")
        return _train(loaded, renderer, questions, settings, out, str(data))


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


def stop_ids(renderer: Renderer, tokenizer: Any) -> list[int]:
    """The tokens that end an answer: EOS, and the chat template's end-of-turn marker when it is one token."""
    ids = list(renderer.end_ids)
    if renderer.end_text:
        marker = tokenizer(renderer.end_text.strip(), add_special_tokens=False)["input_ids"]
        ids += marker if len(marker) == 1 else []
    if tokenizer.eos_token_id is not None:
        ids.append(tokenizer.eos_token_id)
    return sorted(set(ids))


def _train(
    loaded: LoadedModel, renderer: Renderer, questions: list[Question], settings: RLSettings, out: Path, data: str
) -> RLResult:
    started = time.time()
    torch.manual_seed(settings.seed)
    reward = reward_function(settings.verifier, settings.partial_reward)
    policy = build_policy(loaded.model, settings.lora_r, settings.lora_alpha, settings.lora_targets)
    optimizer = torch.optim.AdamW(policy.trainable_parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    sampler = torch.Generator(device=loaded.device).manual_seed(settings.seed)
    tokenizer, stops = loaded.tokenizer, stop_ids(renderer, loaded.tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else stops[0]
    first, history, resumed = 0, [], None
    saved = checkpoints(out / CHECKPOINTS) if settings.resume else []
    if saved:
        resumed = saved[-1]
        state = load_checkpoint(resumed, policy, optimizer, sampler)
        first, history = state["step"], state["history"]
        console.print(f"resumed from {resumed} (step {first})")
    steps = total_steps(settings, len(questions))
    with progress_bar() as bar:
        task = bar.add_task("PPO", total=steps, completed=first, rate="")
        for step in range(first, steps):
            batch = [questions[i] for i in batch_rows(len(questions), settings.batch_size, step, settings.seed)]
            tick = time.time()
            prompts = [q.prompt_ids for q in batch]
            rollouts = sample_rollouts(policy.model, prompts, max_new_tokens=settings.max_new_tokens, stop_ids=stops,
                                       pad_id=pad_id, generator=sampler)  # fmt: skip
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
    return _write(loaded, policy, settings, out, data, history, resumed, time.time() - started)


def _response_texts(tokenizer: Any, ids: torch.Tensor, mask: torch.Tensor) -> list[str]:
    lengths = mask.sum(dim=1).long().tolist()
    return [tokenizer.decode(row[:n].tolist(), skip_special_tokens=True) for row, n in zip(ids, lengths, strict=True)]


def _write(
    loaded: LoadedModel, policy: Policy, settings: RLSettings, out: Path, data: str, history: list, resumed, seconds
) -> RLResult:
    last = history[-1] if history else {}
    metrics = {"steps": len(history), "reward_first": history[0]["reward"] if history else None,
               "reward_last": last.get("reward"), "kl_last": last.get("kl"), "value_loss_last": last.get("value_loss"),
               "resumed_from": str(resumed) if resumed else None, "seconds": round(seconds, 1)}  # fmt: skip
    (out / HISTORY_NAME).write_text("".join(json.dumps(h) + "\n" for h in history), encoding="utf-8")
    torch.save(policy.value_head.state_dict(), out / "value_head.pt")
    model = plain_model(policy)
    model.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    meta = {"stage": "rl", "algorithm": "ppo", "data": data, "settings": settings_dict(settings),
            "model": loaded.identity, "metrics": metrics, "versions": package_versions()}  # fmt: skip
    (out / DONE_NAME).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return RLResult(out, model, policy.value_head, settings, history, metrics)
