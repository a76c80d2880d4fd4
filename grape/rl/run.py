"""`grape rl`: reinforce a warm-up (SFT) model on questions with gold answers, the reward from a verifier.

``algo: ppo`` (default) is our PPO loop with a value head, as ReFT (grape.rl.ppo); ``algo: grpo`` is TRL's
GRPOTrainer with the same questions, prompt ids and reward (grape.rl.grpo). Both read the questions through
the one Renderer, write the resolved settings before training, and leave the same outputs
(grape.rl.outputs): the trained model, its history, the model card and ``grape-rl.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.config import with_overrides, write_settings
from grape.data.output_lock import OutputLock
from grape.models.load import load_model
from grape.rl.outputs import CONFIG_NAME, Trained, write_outputs
from grape.rl.prompts import read_questions
from grape.rl.settings import RLSettings, check, resolved
from grape.text import Renderer


@dataclass
class RLResult:
    output_dir: Path
    model: Any  # the trained policy as a plain transformers model (LoRA merged in)
    value_head: Any  # PPO's torch.nn.Linear; None for GRPO
    settings: RLSettings  # resolved: the learning rate and LoRA alpha filled in
    history: list[dict[str, Any]]  # one entry per rollout batch
    metrics: dict[str, Any]


def rl(data: str | Path, output_dir: str | Path, settings: RLSettings | None = None, **overrides: Any) -> RLResult:
    """Train on the questions in ``data`` (rows with a prompt and the gold answer the verifier reads).

    ``overrides`` set fields of `RLSettings`, e.g. ``rl("train.jsonl", "out", verifier="number", max_steps=50)``.
    """
    settings = with_overrides(RLSettings, settings, overrides)
    check(settings)
    settings = resolved(settings)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    with OutputLock(out):
        started = time.time()
        loaded = load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
        renderer = Renderer(loaded.tokenizer, settings.template, settings.eos)
        answer_required = not settings.verifier.startswith(("code", "python:", "regex:"))
        questions = read_questions(data, renderer, settings.prompt_column, settings.answer_column,
                                   settings.max_prompt_tokens, answer_required)  # fmt: skip
        write_settings(settings, out / CONFIG_NAME, header=f"grape rl {data} -o {out} --config {out / CONFIG_NAME}")
        trained: Trained
        if settings.algo == "grpo":
            from grape.rl.grpo import train_grpo

            trained = train_grpo(loaded, renderer, questions, settings, out)
        else:
            from grape.rl.ppo import train_ppo

            trained = train_ppo(loaded, renderer, questions, settings, out)
        metrics = write_outputs(loaded, trained, settings, out, str(data), len(questions), time.time() - started)
        return RLResult(out, trained.model, trained.value_head, settings, trained.history, metrics)
