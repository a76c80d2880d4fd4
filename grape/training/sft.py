"""The sft stage: fine-tune the target on a selection with TRL's SFTTrainer, save a transformers directory.

The loss is the objective ``settings.loss`` (grape.training.objectives): TRL's own NLL by default, or a
token-weighted NLL of the rows' ``loss_weights`` through the trainer's loss hook (grape.training.trainer).

The model, template and eos default to those the selection was scored with (its sidecar; a different
one given is used, with a warning: grape.training.scoring_defaults).

OUTDIR holds, when done: the model (LoRA merged in, in the training dtype) and tokenizer as a plain
transformers directory, and/or the PEFT adapter in OUTDIR/adapter (``save``, grape.training.save),
``grape-sft.yaml`` (the resolved settings, written before training starts), README.md (the model card)
and ``grape-sft.json`` (what was trained on, the loss curve, versions; written last, so its presence
means "finished"). Checkpoints go to OUTDIR/checkpoints; a re-run with the same OUTDIR resumes from the
last complete one when its settings are the same, and otherwise stops; a re-run of a finished run trains
nothing and leaves its outputs as they are (grape.training.resume).

Multi-GPU: the same command under ``accelerate launch -m grape.cli sft ...``; the trainer shards the
batches, and only the main process writes the final model.
"""

from __future__ import annotations

import json
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grape.config import settings_dict, with_overrides
from grape.console import console
from grape.data.read_rows import source_name
from grape.data.tables import package_versions, read_table_rows
from grape.errors import GrapeError
from grape.models.context import context_length
from grape.models.cpu_heap import kept_heap
from grape.models.load import LoadedModel, load_model, resolve_device
from grape.models.segment_attention import packed_attention
from grape.text import Renderer
from grape.training.dataset import SFTExample, to_dataset, tokenise_examples
from grape.training.ift import read_inputs_through
from grape.training.model_card import README, model_card
from grape.training.objectives import OBJECTIVES
from grape.training.resume import CHECKPOINTS, run_to_end, start_run
from grape.training.save import ADAPTER, merged_in_training_dtype, save_adapter, saved_files
from grape.training.scoring_defaults import selection_meta, with_scoring_defaults
from grape.training.settings import SFTSettings, check, learning_rate, use_bf16
from grape.training.sft_config import sft_config

DONE_NAME = "grape-sft.json"


@dataclass
class SFTResult:
    output_dir: Path | None
    model: Any  # the trained model, LoRA merged in, in eval mode, in the training dtype
    tokenizer: Any
    settings: SFTSettings  # resolved: no "auto" left
    metrics: dict[str, Any]


def sft(
    selected: str | Path | list[dict[str, Any]],
    output_dir: str | Path | None,
    settings: SFTSettings | None = None,
    loaded: LoadedModel | None = None,
    command: str | None = None,
    callbacks: list[Any] | None = None,
    **overrides: Any,
) -> SFTResult:
    """Fine-tune ``settings.model`` on the selection; write it to ``output_dir`` (None: keep it in memory).

    ``overrides`` set fields of `SFTSettings`, e.g. ``sft("selected.jsonl", "out", max_steps=20, lora_r=8)``.
    ``loaded`` is trained in place when given (the experiment passes a fresh copy per arm). ``command``,
    the command line as typed, goes into the model card (default: one that reruns from grape-sft.yaml).
    ``callbacks``: transformers ``TrainerCallback``s added to the trainer's (e.g. to time or log steps).
    """
    settings = with_overrides(SFTSettings, settings, overrides)
    check(settings)
    started = time.time()
    file = source_name(selected)
    meta = selection_meta(selected)
    if loaded is not None and settings.model is None:  # the model trained is the one given
        settings = replace(settings, model=loaded.identity.get("spec"))
    settings, warnings = with_scoring_defaults(settings, meta)
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    rows = read_table_rows(selected)
    if not rows:
        raise GrapeError(f"{file}: the selection is empty; nothing to train on")
    # fp32 master weights on the CPU: the trainer moves the model to its device (one GPU per process
    # under accelerate) and autocasts the matmuls to bf16 where the hardware has it.
    loaded = loaded or load_model(settings.model, "float32", "cpu", settings.trust_remote_code)
    renderer = Renderer(loaded.tokenizer, settings.template, settings.eos)
    device = resolve_device(settings.device)
    settings = _resolved(settings, loaded, device)
    examples = tokenise_examples(rows, renderer, settings.max_length, file, OBJECTIVES[settings.loss].weighted)
    out = Path(output_dir) if output_dir is not None else None
    checkpoint, rerun = start_run(out, settings, "sft", file)
    with tempfile.TemporaryDirectory(prefix="grape-sft-") as scratch:  # the trainer's folder when nothing is saved
        trainer = _trainer(loaded, examples, settings, device, out, Path(scratch), callbacks or ())
        # a packed row on a CPU attends per example, not over its whole square (grape.models.segment_attention)
        packed_on_cpu = settings.padding_free and device.type == "cpu"
        # on a CPU glibc's heap is kept: a step's large blocks are reused, not faulted afresh (grape.models.cpu_heap)
        with packed_attention(loaded.model) if packed_on_cpu else nullcontext(), kept_heap(device.type == "cpu"):
            run = run_to_end(trainer, checkpoint, out, DONE_NAME, saved_outputs(settings.save))
    if run.kept is not None:  # finished before: its outputs stay as they are
        return SFTResult(out, merged_in_training_dtype(trainer.model, settings.precision), loaded.tokenizer,
                         settings, run.kept)  # fmt: skip
    output = run.output
    writer = out is not None and trainer.is_world_process_zero()
    merged, adapter = saved_files(settings.save)
    if writer and adapter:
        save_adapter(trainer.model, loaded.tokenizer, out / ADAPTER)  # before merging folds it away
    untied = trainer.frozen_embeddings is not None and read_inputs_through(trainer.model, trainer.frozen_embeddings)
    model = merged_in_training_dtype(trainer.model, settings.precision)
    metrics = _metrics(trainer, output, examples, checkpoint, time.time() - started)
    metrics["ift_untied_input_embeddings"] = untied
    if writer:
        if merged:
            model.save_pretrained(out)
            loaded.tokenizer.save_pretrained(out)
        card = model_card(settings, metrics, file, meta, loaded.identity, command or rerun)
        (out / README).write_text(card, encoding="utf-8")
        done = {"stage": "sft", "selected": file, "settings": settings_dict(settings), "model": loaded.identity,
                "metrics": metrics, "versions": package_versions()}  # fmt: skip
        (out / DONE_NAME).write_text(json.dumps(done, indent=2, default=str) + "\n")
    return SFTResult(out, model, loaded.tokenizer, settings, metrics)


def _resolved(settings: SFTSettings, loaded: LoadedModel, device) -> SFTSettings:
    """The settings with every automatic choice made, as saved beside the model."""
    limit = context_length(loaded)
    if settings.max_length is not None and settings.max_length > limit:
        raise GrapeError(f"max_length {settings.max_length} is over the model's context of {limit} tokens")
    return replace(
        settings,
        lr=learning_rate(settings),
        lora_alpha=(settings.lora_alpha or 2 * settings.lora_r) if settings.lora_r else None,
        precision="bf16" if use_bf16(settings, device) else "fp32",
        max_length=settings.max_length or limit,
    )


def _trainer(
    loaded: LoadedModel,
    examples: list[SFTExample],
    settings: SFTSettings,
    device,
    out: Path | None,
    scratch: Path,
    callbacks: tuple[Any, ...] | list[Any] = (),
):
    from grape.training.last_step_log import LogLastStep
    from grape.training.trainer import ObjectiveSFTTrainer

    folder = out / CHECKPOINTS if out is not None else scratch
    args = sft_config(settings, device, folder, save=out is not None)
    return ObjectiveSFTTrainer(
        objective=OBJECTIVES[settings.loss],
        ift_lambda=settings.ift_lambda,
        ift_gamma=settings.ift_gamma,
        model=loaded.model,
        args=args,
        train_dataset=to_dataset(examples),
        processing_class=loaded.tokenizer,
        peft_config=lora_config(settings),
        callbacks=[LogLastStep(), *callbacks],
    )


def saved_outputs(save: str) -> list[str]:
    """The files in OUTDIR that say the model was saved as ``save`` asks (SFTSettings or DPOSettings ``save``)."""
    merged, adapter = saved_files(save)
    return ["config.json"] * merged + [f"{ADAPTER}/adapter_config.json"] * adapter


def lora_config(settings: Any):
    """PEFT's LoraConfig of ``settings`` (SFTSettings or DPOSettings), None for full fine-tuning."""
    if settings.lora_r <= 0:
        return None
    from peft import LoraConfig

    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.lora_targets,
        task_type="CAUSAL_LM",
    )


def _metrics(trainer: Any, output: Any, examples: list[SFTExample], checkpoint: Path | None, seconds: float) -> dict:
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "examples": len(examples),
        "response_tokens": sum(sum(e.completion_mask) for e in examples),
        "steps": trainer.state.global_step,
        "resumed_from": str(checkpoint) if checkpoint else None,
        "train_loss": output.training_loss,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
        "loss_curve": [(h["step"], h["loss"]) for h in trainer.state.log_history if "loss" in h],
        "seconds": round(seconds, 2),
    }
