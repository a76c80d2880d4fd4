"""`grape rl`: reinforce a warm-up (SFT) model on questions with gold answers, the reward from a verifier.

``algo: ppo`` (default) is our PPO loop with a value head, as ReFT (grape.rl.ppo); ``algo: grpo`` is TRL's
GRPOTrainer with the same questions, prompt ids and reward (grape.rl.grpo). Both take the warm-up model and
template as sft and eval would (grape.rl.model_defaults), read the questions through the one Renderer, resume
only from checkpoints made with the same settings (grape.rl.resume), write the resolved settings before
training, and leave the same outputs (grape.rl.outputs): the trained model, its history, the model card and
``grape-rl.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.config import with_overrides, write_settings
from grape.console import console
from grape.data.output_lock import OutputLock
from grape.errors import InputError
from grape.models.load import LoadedModel, load_model
from grape.rl.model_defaults import with_model_defaults
from grape.rl.outputs import CONFIG_NAME, Trained, write_outputs
from grape.rl.prompts import Question, read_questions, read_questions_skipping
from grape.rl.resume import checkpoint_to_resume, clear_checkpoints
from grape.rl.settings import RLSettings, check, check_question_count, resolved
from grape.text import Renderer


@dataclass
class RLResult:
    output_dir: Path
    model: Any  # the trained policy as a plain transformers model (LoRA merged in)
    value_head: Any  # PPO's torch.nn.Linear; None for GRPO
    settings: RLSettings  # resolved: model, template, EOS, the learning rate and LoRA alpha filled in
    history: list[dict[str, Any]]  # one entry per rollout batch
    metrics: dict[str, Any]
    skipped: list[InputError]  # the rows left out (on_error: skip), each a one-line error naming row and field


def rl(data: str | Path, output_dir: str | Path, settings: RLSettings | None = None, **overrides: Any) -> RLResult:
    """Train on the questions in ``data`` (rows with a prompt and the gold answer the verifier reads).

    ``overrides`` set fields of `RLSettings`, e.g. ``rl("train.jsonl", "out", verifier="number", max_steps=50)``.
    Everything that can refuse the run (settings, questions, the checkpoints' settings) is checked before OUTDIR is
    created or its settings file written.
    """
    settings = with_overrides(RLSettings, settings, overrides)
    check(settings)
    settings = resolved(with_model_defaults(settings, data))
    out = Path(output_dir)
    with OutputLock(out):
        started = time.time()
        resume_from = checkpoint_to_resume(out, settings)  # before the model loads: a refusal comes at once
        loaded = load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
        renderer = Renderer(loaded.tokenizer, settings.template, settings.eos)
        questions, skipped = _questions(data, renderer, settings)
        check_question_count(settings, len(questions))
        clear_checkpoints(out, settings)
        write_settings(settings, out / CONFIG_NAME, header=f"grape rl {data} -o {out} --config {out / CONFIG_NAME}")
        trained = _train(loaded, renderer, questions, settings, out, resume_from)
        metrics = write_outputs(loaded, trained, settings, out, str(data), len(questions), skipped,
                                time.time() - started)  # fmt: skip
        return RLResult(out, trained.model, trained.value_head, settings, trained.history, metrics, skipped)


def _questions(data: str | Path, renderer: Renderer, settings: RLSettings) -> tuple[list[Question], list[InputError]]:
    """The questions, and with ``on_error: skip`` the errors of the rows left out (said in one line)."""
    answer_required = not settings.verifier.startswith(("code", "python:", "regex:"))
    reading = (data, renderer, settings.prompt_column, settings.answer_column, settings.max_prompt_tokens,
               answer_required)  # fmt: skip
    if settings.on_error == "fail":
        return read_questions(*reading), []
    questions, skipped = read_questions_skipping(*reading)
    if skipped:
        console.print(f"[yellow]warning:[/] skipped {len(skipped)} of {len(questions) + len(skipped)} rows "
                      f"(--on-error skip); the first: {skipped[0]}", highlight=False, soft_wrap=True)  # fmt: skip
    return questions, skipped


def _train(
    loaded: LoadedModel,
    renderer: Renderer,
    questions: list[Question],
    settings: RLSettings,
    out: Path,
    resume_from: Path | None,
) -> Trained:
    if settings.algo == "grpo":
        from grape.rl.grpo import train_grpo

        return train_grpo(loaded, renderer, questions, settings, out, resume_from)
    from grape.rl.ppo import train_ppo

    return train_ppo(loaded, renderer, questions, settings, out, resume_from)
