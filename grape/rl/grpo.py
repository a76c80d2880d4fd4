"""GRPO through TRL's GRPOTrainer (`grape rl --algo grpo`): the same questions, prompt ids and reward as PPO.

Each rollout batch takes ``batch_size`` questions and samples ``num_generations`` answers to each (temperature
1, no top-k, no top-p, cut at ``max_new_tokens``); the verifier's reward (grape.rl.reward) scores them; an
answer's advantage is its reward minus its group's mean, over the group's standard deviation (TRL's
``scale_rewards="group"``); ``ppo_epochs`` passes of the clipped loss (ε = ``clip_ratio``) with a k3 KL term
against the warm-up model (β = ``kl_coef``) follow, one optimizer step per ``mini_batch_size`` questions.

Prompt ids. TRL tokenises prompt text itself (``processing_class(text=prompts)``): that adds a second BOS to
a chat template's text (which carries its own) and knows nothing of the Renderer's boundary rule (the
``paper`` prompt's trailing space belongs to the answer). `RenderedGRPOTrainer` replaces that one step: the
dataset's ``prompt`` column holds the text of each question's Renderer ids (what TRL logs and hands to reward
functions), and the ids generated from are those ids themselves (a prompt over ``max_prompt_tokens`` was refused
or skipped, never cut, as for PPO). So the tokens are the text's tokens here too (tests/rl/test_grpo.py pins it).

Checkpoints go to OUTDIR/checkpoints (the trainer's ``checkpoint-N`` folders, N counting optimizer steps),
one every ``save_steps`` rollout batches and one at the end; a re-run with the same settings resumes from the
newest (grape.rl.resume decides, as for PPO).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

from trl import GRPOConfig, GRPOTrainer

from grape.console import console
from grape.errors import GrapeError
from grape.models.cpu_heap import kept_heap
from grape.models.load import LoadedModel
from grape.rl.outputs import CHECKPOINTS, Trained
from grape.rl.prompts import Question, stop_ids
from grape.rl.reward import reward_function
from grape.rl.settings import RLSettings
from grape.text import Renderer


class RenderedGRPOTrainer(GRPOTrainer):
    """GRPOTrainer that generates from the Renderer's ids of each prompt instead of tokenising its text again."""

    def __init__(self, *args: Any, prompt_ids: dict[str, list[int]], **kwargs: Any):
        self.rendered_ids = prompt_ids  # prompt text (as in the dataset) -> its ids
        super().__init__(*args, **kwargs)

    def _tokenize_prompts(self, prompts: list):
        return [list(self.rendered_ids[text]) for text in prompts], None, {}

    # Timing, as PPO's history has it: each rollout batch's sampling seconds, and the rest of the batch (rewards,
    # the old and reference passes, the optimizer steps) as its update seconds.
    def train(self, *args: Any, **kwargs: Any):
        self._batch_started = time.perf_counter()
        return super().train(*args, **kwargs)

    def _generate(self, prompts: list):
        tick = time.perf_counter()
        generated = super()._generate(prompts)
        self._metrics["train" if self.model.training else "eval"]["rollout_seconds"].append(time.perf_counter() - tick)
        return generated

    def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
        if "loss" in logs:  # a training entry: one per rollout batch (logging_steps)
            now = time.perf_counter()
            logs["batch_seconds"], self._batch_started = now - self._batch_started, now
        super().log(logs, start_time)


def optimizer_steps_per_batch(settings: RLSettings) -> int:
    """One optimizer step per mini-batch of questions, ``ppo_epochs`` passes over each rollout batch."""
    return settings.batch_size // (settings.mini_batch_size or settings.batch_size) * settings.ppo_epochs


def rollout_batches(settings: RLSettings, n_questions: int) -> int:
    """``max_steps``, else ``epochs`` passes over the questions (TRL's sampler drops an epoch's last, short batch;
    grape.rl.settings.check_question_count refused a batch larger than the questions before the run began)."""
    if settings.max_steps > 0:
        return settings.max_steps
    return max(1, math.ceil(settings.epochs * (n_questions // settings.batch_size)))


def grpo_config(settings: RLSettings, n_questions: int, folder: Path, device: Any) -> GRPOConfig:
    """TRL's GRPOConfig for resolved ``settings``: a rollout batch is one generation batch of TRL's."""
    per_step = settings.mini_batch_size or settings.batch_size  # questions per optimizer step
    micro = settings.micro_batch_size or per_step  # questions (with their groups) per forward/backward pass
    steps = optimizer_steps_per_batch(settings)
    return GRPOConfig(
        output_dir=str(folder),
        num_generations=settings.num_generations,
        per_device_train_batch_size=micro * settings.num_generations,
        gradient_accumulation_steps=per_step // micro,
        steps_per_generation=settings.batch_size // micro,
        num_iterations=settings.ppo_epochs,
        max_steps=rollout_batches(settings, n_questions) * steps,
        max_completion_length=settings.max_new_tokens,
        temperature=1.0,
        top_p=1.0,
        top_k=0,
        beta=settings.kl_coef,
        epsilon=settings.clip_ratio,
        loss_type="grpo" if settings.aggregation == "sequence" else "dapo",
        scale_rewards="group",
        learning_rate=settings.lr,
        lr_scheduler_type="constant",
        weight_decay=settings.weight_decay,
        max_grad_norm=settings.max_grad_norm,
        seed=settings.seed,
        data_seed=settings.seed,
        bf16=False,  # the model trains in the dtype it was loaded in, as PPO's
        fp16=False,
        use_cpu=device.type == "cpu",
        activation_checkpointing=False,  # TRL's default is on
        disable_dropout=True,
        logging_steps=steps,  # one log entry per rollout batch
        save_strategy="steps",
        save_steps=settings.save_steps * steps,
        save_total_limit=2,
        report_to="none",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )


def verifier_reward(settings: RLSettings, questions: list[Question]):
    """TRL's reward function: the verifier's reward of each completion, judged against its question's item.

    TRL passes the dataset's other columns by name: ``question`` is each completion's question index. It also
    logs, per rollout batch, the share of right answers and of answers the verifier could judge.
    """
    reward = reward_function(settings.verifier, settings.partial_reward)

    def verifier(prompts: list, completions: list[str], question: list[int], log_metric=None, **_: Any) -> list:
        rewards = [reward(text, questions[i].item) for text, i in zip(completions, question, strict=True)]
        if log_metric is not None:
            log_metric("right", sum(r.kind == "right" for r in rewards) / len(rewards))
            log_metric("answered", sum(r.kind != "no_answer" for r in rewards) / len(rewards))
        return [r.value for r in rewards]

    return verifier


def train_grpo(
    loaded: LoadedModel,
    renderer: Renderer,
    questions: list[Question],
    settings: RLSettings,
    out: Path,
    resume_from: Path | None = None,
) -> Trained:
    """Run GRPO on ``questions`` from ``loaded`` (trained in place), continuing from the trainer checkpoint
    ``resume_from`` (grape.rl.resume chose it) when given."""
    from datasets import Dataset
    from transformers import TrainerCallback

    class SaveAtEnd(TrainerCallback):  # as PPO: a finished run's re-run has nothing left to do
        def on_step_end(self, args, state, control, **kwargs):
            control.should_save = control.should_save or state.global_step >= state.max_steps

    texts = [loaded.tokenizer.decode(q.prompt_ids) for q in questions]
    rendered = dict(zip(texts, (q.prompt_ids for q in questions), strict=True))
    if any(rendered[t] != q.prompt_ids for t, q in zip(texts, questions, strict=True)):
        raise GrapeError("two questions' prompt ids decode to the same text; GRPO needs each text to name its ids")
    dataset = Dataset.from_dict({"prompt": texts, "question": list(range(len(questions)))})
    config = grpo_config(settings, len(questions), out / CHECKPOINTS, loaded.device)
    generation = loaded.model.generation_config
    model_stops = generation.eos_token_id
    generation.eos_token_id = stop_ids(renderer, loaded.tokenizer)  # what ends an answer, read once by the trainer
    try:
        trainer = RenderedGRPOTrainer(model=loaded.model, reward_funcs=verifier_reward(settings, questions),
                                      args=config, train_dataset=dataset, processing_class=loaded.tokenizer,
                                      peft_config=_lora_config(settings), callbacks=[SaveAtEnd()],
                                      prompt_ids=rendered)  # fmt: skip
    finally:
        generation.eos_token_id = model_stops  # the saved model keeps its own
    if resume_from is not None:
        console.print(f"resuming from {resume_from}")
    with kept_heap(loaded.device.type == "cpu"):  # a step's large blocks reused on a CPU (grape.models.cpu_heap)
        trainer.train(resume_from_checkpoint=str(resume_from) if resume_from is not None else None)
    model = trainer.model
    model = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    return Trained(model, grpo_history(trainer.state.log_history, optimizer_steps_per_batch(settings)), resume_from)


def grpo_history(log_history: list[dict[str, Any]], steps_per_batch: int) -> list[dict[str, Any]]:
    """The trainer's log entries of rollout batches, numbered by batch (``optimizer_step`` keeps TRL's count),
    with PPO's timing keys: ``rollout_seconds`` (sampling) and ``update_seconds`` (the rest of the batch)."""
    history = []
    for entry in (e for e in log_history if "reward" in e):
        timed = {}
        if "batch_seconds" in entry and "rollout_seconds" in entry:
            timed = {"update_seconds": max(0.0, entry["batch_seconds"] - entry["rollout_seconds"])}
        history.append({**entry, **timed, "step": entry["step"] // steps_per_batch, "optimizer_step": entry["step"]})
    return history


def _lora_config(settings: RLSettings):
    if settings.lora_r <= 0:
        return None
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=0.0,
                      target_modules=settings.lora_targets, task_type="CAUSAL_LM")  # fmt: skip
