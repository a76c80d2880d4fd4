"""The reward-model stage: r(prompt, response) trained on preference pairs with TRL's RewardTrainer.

A sequence-classification head with one output sits on any causal LM (LoRA on the body by default, the head
trained in full); the loss is −log σ(r(chosen) − r(rejected)) (Bradley–Terry). `grape decode` steers by it.

The ids are grape's: the one `Renderer` (grape.text) renders prompt + response with the template and end
marker the pairs were scored with (defaults from the pairs' sidecar, as `grape sft` does), and the whole
text is tokenised. The trainer gets them pre-tokenised (``chosen_ids``/``rejected_ids``), so TRL neither
re-tokenises nor appends an EOS of its own.

The pad token matters here: transformers' head reads the *rightmost token that is not the pad token*. With
the usual fallback pad = EOS (SmolLM2: both are ``<|im_end|>``, which also ends every chat response) the
reward would be read one token early, on the response's last word instead of its end marker. So the pad
token is one that ends no training sequence (`padding_token`), and the saved model carries it.

OUTDIR holds: the model (LoRA merged in) and tokenizer as a transformers sequence-classification directory,
``grape-reward-model.yaml`` (resolved settings: the template and eos `grape decode` reads the text with; written
before training, so that it says how the checkpoints were made), ``checkpoints/`` (every ``save_steps``: a
re-run continues from the last one when the settings are the same, and trains nothing after a finished run, as
`grape sft` does), ``grape-reward-model.json`` (pairs, loss curve, accuracies, versions; written last) and README.md.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grape.config import settings_dict, with_overrides
from grape.console import console
from grape.data.tables import package_versions, read_table_rows, table_file
from grape.errors import GrapeError, InputError
from grape.models.context import context_length
from grape.models.cpu_heap import kept_heap
from grape.models.load import (
    LoadedModel,
    pretrained_model,
    quiet_transformers,
    resolve_device,
    resolve_model_dir,
    tokenizer_dir,
)
from grape.text import PromptError, Renderer
from grape.training.preference import read_pairs
from grape.training.resume import CHECKPOINTS, run_to_end, start_run
from grape.training.reward_model_settings import RewardModelSettings, check_reward_model, reward_learning_rate
from grape.training.scoring_defaults import selection_meta, with_scoring_defaults
from grape.training.settings import SFTSettings, use_bf16
from grape.training.sft_config import loop_args

SETTINGS_NAME = "grape-reward-model.yaml"  # grape.decoding.reward reads the template and eos from it
DONE_NAME = "grape-reward-model.json"


@dataclass
class RewardModelResult:
    output_dir: Path | None
    model: Any  # the sequence-classification model, LoRA merged in, eval mode
    tokenizer: Any  # with the pad token the model was trained with
    settings: RewardModelSettings  # resolved
    metrics: dict[str, Any]


@dataclass
class RewardPairs:
    chosen_ids: list[list[int]]  # whole-text ids of prompt + chosen (end marker included)
    rejected_ids: list[list[int]]

    def dataset(self):
        from datasets import Dataset

        return Dataset.from_dict({"chosen_ids": self.chosen_ids, "rejected_ids": self.rejected_ids})


def reward_model(
    pairs: Any,
    output_dir: str | Path | None,
    settings: RewardModelSettings | None = None,
    **overrides: Any,
) -> RewardModelResult:
    """Train a reward model on ``pairs`` (TRL's prompt/chosen/rejected rows: a file, a list of dicts or a
    ``datasets.Dataset``); write it to ``output_dir`` (None: keep it in memory)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, set_seed

    settings = with_overrides(RewardModelSettings, settings, overrides)
    check_reward_model(settings)
    started = time.time()
    file = str(table_file(pairs) or "pairs")
    settings, warnings = with_scoring_defaults(settings, selection_meta(pairs), stage="reward-model", data="pairs")
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    rows = read_table_rows(pairs)  # a file, a list of dicts or a datasets.Dataset
    if not rows:
        raise GrapeError(f"{file}: no pairs to train on")
    quiet_transformers()
    target, identity = resolve_model_dir(settings.model, settings.trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(target, identity, settings.trust_remote_code),
                                              trust_remote_code=settings.trust_remote_code)  # fmt: skip
    set_seed(settings.seed)  # the new head's initial weights
    model = pretrained_model(
        AutoModelForSequenceClassification, target, identity, num_labels=1, dtype=torch.float32,
        attn_implementation="sdpa", trust_remote_code=settings.trust_remote_code,
    )  # fmt: skip
    device = resolve_device(settings.device)
    settings = _resolved(settings, LoadedModel(model, tokenizer), device)
    renderer = Renderer(tokenizer, settings.template, settings.eos)
    train = tokenise_reward_pairs(rows, renderer, settings.max_length, file)
    held_out = None
    if settings.eval_pairs:
        held_out = tokenise_reward_pairs(read_table_rows(settings.eval_pairs), renderer, settings.max_length,
                                         settings.eval_pairs)  # fmt: skip
    sequences = (
        train.chosen_ids + train.rejected_ids + (held_out.chosen_ids + held_out.rejected_ids if held_out else [])
    )
    tokenizer.pad_token = padding_token(tokenizer, sequences)
    out = Path(output_dir) if output_dir is not None else None
    checkpoint, rerun = start_run(out, settings, "reward-model", file, SETTINGS_NAME)
    with tempfile.TemporaryDirectory(prefix="grape-reward-model-") as scratch:  # the trainer's folder when no OUTDIR
        folder = out / CHECKPOINTS if out is not None else Path(scratch)
        trainer = _trainer(model, tokenizer, train, held_out, settings, device, folder, save=out is not None)
        with kept_heap(device.type == "cpu"):  # a step's large blocks reused on a CPU (grape.models.cpu_heap)
            run = run_to_end(trainer, checkpoint, out, DONE_NAME, ["config.json"])
        metrics = run.kept or _metrics(trainer, run.output, train, checkpoint, time.time() - started)
        if held_out is not None and run.kept is None:
            metrics["eval"] = {k.removeprefix("eval_"): v for k, v in trainer.evaluate().items()}
    trained = trainer.model.merge_and_unload() if hasattr(trainer.model, "merge_and_unload") else trainer.model
    trained = trained.eval()
    if run.kept is not None:  # finished before: its outputs stay as they are
        return RewardModelResult(out, trained, tokenizer, settings, metrics)
    if out is not None and trainer.is_world_process_zero():
        trained.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / "README.md").write_text(_card(settings, metrics, file, identity), encoding="utf-8")
        done = {"stage": "reward-model", "pairs": file, "settings": settings_dict(settings), "model": identity,
                "pad_token": tokenizer.pad_token, "metrics": metrics, "versions": package_versions()}  # fmt: skip
        (out / DONE_NAME).write_text(json.dumps(done, indent=2, default=str) + "\n")
    return RewardModelResult(out, trained, tokenizer, settings, metrics)


def tokenise_reward_pairs(rows: list[dict[str, Any]], renderer: Renderer, max_length: int, file: str) -> RewardPairs:
    """Each pair's two whole-text sequences, in order; one longer than ``max_length`` is an error, never cut."""
    out = RewardPairs([], [])
    for number, (prompt, chosen, rejected) in enumerate(read_pairs(rows, file), start=1):
        try:
            encoded = renderer.encode(prompt, [chosen, rejected])
        except PromptError as exc:
            raise InputError(file, number, "prompt", str(exc)) from exc
        for name, ids, into in zip(("chosen", "rejected"), encoded, (out.chosen_ids, out.rejected_ids), strict=True):
            sequence = ids.prompt + ids.response
            if len(sequence) > max_length:
                raise InputError(file, number, name, f"prompt + {name} is {len(sequence)} tokens, over max_length "
                                 f"{max_length} (raise --max-length)")  # fmt: skip
            into.append(sequence)
    return out


def padding_token(tokenizer: Any, sequences: list[list[int]]) -> str:
    """A pad token that is the last token of no sequence: the tokenizer's own if it qualifies, else another
    special token. (The head reads the rightmost non-pad token; a pad equal to a final EOS hides the EOS.)"""
    last = {s[-1] for s in sequences if s}
    for token_id in [tokenizer.pad_token_id, *tokenizer.all_special_ids, tokenizer.unk_token_id]:
        if token_id is not None and token_id not in last:
            return tokenizer.convert_ids_to_tokens(token_id)
    raise GrapeError("every special token of this tokenizer ends some sequence: no pad token is safe for the "
                     "reward head (use another template or --no-eos)")  # fmt: skip


def _resolved(settings: RewardModelSettings, loaded: LoadedModel, device: Any) -> RewardModelSettings:
    limit = context_length(loaded)
    if settings.max_length is not None and settings.max_length > limit:
        raise GrapeError(f"max_length {settings.max_length} is over the model's context of {limit} tokens")
    bf16 = use_bf16(SFTSettings(precision=settings.precision), device)
    return replace(
        settings,
        lr=reward_learning_rate(settings),
        lora_alpha=(settings.lora_alpha or 2 * settings.lora_r) if settings.lora_r else None,
        precision="bf16" if bf16 else "fp32",
        max_length=settings.max_length or limit,
    )


def _trainer(model, tokenizer, train: RewardPairs, held_out: RewardPairs | None, settings, device, folder: Path,
             save: bool):  # fmt: skip
    from trl import RewardConfig, RewardTrainer

    from grape.training.last_step_log import LogLastStep

    args = loop_args(settings, device) | dict(
        output_dir=str(folder),
        save_strategy="steps" if save else "no",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        per_device_eval_batch_size=settings.batch_size,
        max_length=None,  # lengths were checked: nothing is dropped
        center_rewards_coefficient=settings.center_rewards,
    )
    args.update(settings.trainer)
    try:
        config = RewardConfig(**args)
    except (TypeError, ValueError) as exc:
        raise GrapeError(f"trainer: RewardConfig refused the settings: {str(exc).splitlines()[0]}") from exc
    return RewardTrainer(model=model, args=config, train_dataset=train.dataset(),
                         eval_dataset=held_out.dataset() if held_out else None, processing_class=tokenizer,
                         peft_config=_lora_config(settings), callbacks=[LogLastStep()])  # fmt: skip


def _lora_config(settings: RewardModelSettings):
    if settings.lora_r <= 0:
        return None
    from peft import LoraConfig

    return LoraConfig(r=settings.lora_r, lora_alpha=settings.lora_alpha, lora_dropout=settings.lora_dropout,
                      target_modules=settings.lora_targets, task_type="SEQ_CLS", modules_to_save=["score"])  # fmt: skip


def _metrics(trainer: Any, output: Any, train: RewardPairs, checkpoint: Path | None, seconds: float) -> dict[str, Any]:
    logged = [h for h in trainer.state.log_history if "loss" in h]
    return {
        "pairs": len(train.chosen_ids),
        "steps": trainer.state.global_step,
        "resumed_from": str(checkpoint) if checkpoint else None,
        "train_loss": output.training_loss,
        "loss_first": logged[0]["loss"] if logged else None,
        "loss_last": logged[-1]["loss"] if logged else None,
        "accuracy_last": logged[-1].get("accuracy") if logged else None,  # on the last logged training batches
        "loss_curve": [(h["step"], h["loss"], h.get("accuracy")) for h in logged],
        "seconds": round(seconds, 2),
    }


def _card(settings: RewardModelSettings, metrics: dict[str, Any], file: str, identity: dict[str, Any]) -> str:
    held_out = metrics.get("eval") or {}
    lines = [
        "# Reward model (grape reward-model)", "",
        f"A one-output sequence-classification head on `{settings.model}` ({identity.get('kind')}), trained with "
        f"TRL's RewardTrainer on the preference pairs `{file}` ({metrics['pairs']} pairs, {metrics['steps']} steps, "
        f"LoRA r {settings.lora_r or 'none: full fine-tuning'}).", "",
        f"It reads prompt + response rendered with the `{settings.template}` template"
        + (", the response ending with the end marker" if settings.eos else "") + "; the reward is the head on "
        "the last token. Use it with `grape decode --reward DIR` (Transfer Q*, ARGS, best-of-n).", "",
        (f"Mean training loss {metrics['train_loss']:.4f}" + (" (of the steps run after the resume)"
         if metrics.get("resumed_from") else "") if metrics["train_loss"] is not None else "No loss logged")
        + (f"; held-out accuracy {held_out['accuracy']:.3f} on {settings.eval_pairs}" if "accuracy" in held_out
           else "") + ".", "",
    ]  # fmt: skip
    return "\n".join(lines)
