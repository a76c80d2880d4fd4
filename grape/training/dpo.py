"""The dpo stage: preference optimisation on pairs with TRL, DPO or SimPO, on exactly the ids grape renders and scores.

The pairs (TRL's ``prompt``/``chosen``/``rejected`` rows, as `grape pairs` writes them) are rendered by the one
`Renderer` with the template and end marker they were scored with (their sidecar's ``score_settings``, as sft
takes a selection's), and handed to the trainer pre-tokenised (grape.training.preference_trainers).

``--loss dpo``: the reference is the model before training (with LoRA: the base model, adapter disabled), or
``ref``. Its log-probs are a scoring job on grape's engine (grape.training.reference_pass), computed once before
training and given to TRL's DPOTrainer as precomputed, so no reference model stays in memory while training.
``--loss simpo``: TRL's experimental CPOTrainer with ``loss_type="simpo"``; no reference.

OUTDIR holds, as for sft: the model (LoRA merged) and/or the adapter (``save``), ``grape-dpo.yaml`` (resolved
settings, written before training), README.md (the model card), ``grape-dpo.json`` (written last: "finished"),
checkpoints/ (a re-run with the same settings resumes; of a finished run, trains nothing), and for dpo the
reference pass (``reference-candidates.jsonl``, ``reference.parquet`` and its sidecar; a resumed run reuses it).
"""

from __future__ import annotations

import gc
import json
import os
import tempfile
import time
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
from grape.text import Renderer
from grape.training.preference import PreferencePair, read_pairs, tokenise_pairs
from grape.training.preference_card import README, preference_card
from grape.training.reference_pass import reference_logps
from grape.training.resume import CHECKPOINTS, run_to_end, start_run
from grape.training.save import ADAPTER, merged_in_training_dtype, save_adapter, saved_files
from grape.training.scoring_defaults import selection_meta, with_scoring_defaults
from grape.training.settings import DPOSettings, check_dpo, preference_beta, preference_learning_rate, use_bf16
from grape.training.sft import lora_config, saved_outputs

CONFIG_NAME, DONE_NAME = "grape-dpo.yaml", "grape-dpo.json"


@dataclass
class DPOResult:
    output_dir: Path | None
    model: Any  # the trained model, LoRA merged in, in eval mode, in the training dtype
    tokenizer: Any
    settings: DPOSettings  # resolved: no "auto" left
    metrics: dict[str, Any]


def dpo(
    pairs: str | Path | list[dict[str, Any]],
    output_dir: str | Path | None,
    settings: DPOSettings | None = None,
    loaded: LoadedModel | None = None,
    command: str | None = None,
    **overrides: Any,
) -> DPOResult:
    """Train ``settings.model`` on the preference pairs; write it to ``output_dir`` (None: keep it in memory).

    ``overrides`` set fields of `DPOSettings`, e.g. ``dpo("pairs.jsonl", "out", loss="simpo", max_steps=20)``.
    ``loaded`` is trained in place when given. ``command`` goes into the model card.
    """
    settings = with_overrides(DPOSettings, settings, overrides)
    check_dpo(settings)
    started = time.time()
    file = source_name(pairs)
    meta = selection_meta(pairs)
    if loaded is not None and settings.model is None:  # the model trained is the one given
        settings = replace(settings, model=loaded.identity.get("spec"))
    settings, warnings = with_scoring_defaults(settings, meta, stage="dpo", data="pairs")
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    rows = read_table_rows(pairs)
    if not rows:
        raise GrapeError(f"{file}: no pairs; nothing to train on")
    texts = read_pairs(rows, file)  # a bad row stops here, before any model is loaded
    loaded = loaded or load_model(settings.model, "float32", "cpu", settings.trust_remote_code)
    device = resolve_device(settings.device)
    settings = _resolved(settings, loaded, device)
    renderer = Renderer(loaded.tokenizer, settings.template, settings.eos)
    tokenised = tokenise_pairs(texts, renderer, settings.max_length, file)
    out = Path(output_dir) if output_dir is not None else None
    checkpoint, rerun = start_run(out, settings, "dpo", file, CONFIG_NAME)
    writer_rank = int(os.environ.get("RANK", "0")) == 0  # one writer under `accelerate launch`
    reference_started = time.time()
    if settings.loss == "dpo":
        folder = out if writer_rank else None
        dataset = _dpo_dataset(texts, tokenised, loaded, settings, device, folder, file)
    else:
        from grape.training.preference_trainers import simpo_dataset

        dataset = simpo_dataset(tokenised)
    reference_seconds = time.time() - reference_started if settings.loss == "dpo" else None  # SimPO has none
    with tempfile.TemporaryDirectory(prefix="grape-dpo-") as scratch:  # the trainer's folder when nothing is saved
        trainer = _trainer(loaded, dataset, settings, device, out, Path(scratch))
        with kept_heap(device.type == "cpu"):  # a step's large blocks reused on a CPU (grape.models.cpu_heap)
            run = run_to_end(trainer, checkpoint, out, DONE_NAME, saved_outputs(settings.save))
    if run.kept is not None:  # finished before: its outputs stay as they are
        return DPOResult(out, merged_in_training_dtype(trainer.model, settings.precision), loaded.tokenizer,
                         settings, run.kept)  # fmt: skip
    output = run.output
    writer = out is not None and trainer.is_world_process_zero()
    merged, adapter = saved_files(settings.save)
    if writer and adapter:
        save_adapter(trainer.model, loaded.tokenizer, out / ADAPTER)  # before merging folds it away
    model = merged_in_training_dtype(trainer.model, settings.precision)
    metrics = _metrics(trainer, output, tokenised, checkpoint, reference_seconds, time.time() - started)
    if writer:
        if merged:
            model.save_pretrained(out)
            loaded.tokenizer.save_pretrained(out)
        card = preference_card(settings, metrics, file, meta, loaded.identity, command or rerun)
        (out / README).write_text(card, encoding="utf-8")
        done = {"stage": "dpo", "pairs": file, "settings": settings_dict(settings), "model": loaded.identity,
                "metrics": metrics, "versions": package_versions()}  # fmt: skip
        (out / DONE_NAME).write_text(json.dumps(done, indent=2, default=str) + "\n")
    return DPOResult(out, model, loaded.tokenizer, settings, metrics)


def _resolved(settings: DPOSettings, loaded: LoadedModel, device: Any) -> DPOSettings:
    """The settings with every automatic choice made, as saved beside the model."""
    limit = context_length(loaded)
    if settings.max_length is not None and settings.max_length > limit:
        raise GrapeError(f"max_length {settings.max_length} is over the model's context of {limit} tokens")
    return replace(
        settings,
        beta=preference_beta(settings),
        lr=preference_learning_rate(settings),
        lora_alpha=(settings.lora_alpha or 2 * settings.lora_r) if settings.lora_r else None,
        precision="bf16" if use_bf16(settings, device) else "fp32",
        max_length=settings.max_length or limit,
    )


def _dpo_dataset(
    texts: list, pairs: list[PreferencePair], loaded: LoadedModel, settings: DPOSettings, device: Any,
    folder: Path | None, file: str,
):  # fmt: skip
    """DPOTrainer's dataset: the pairs' ids and their reference log-probs, from grape's scoring engine."""
    from grape.training.preference_trainers import dpo_dataset

    if settings.ref is None:  # the model before training: score it now, before the trainer adds an adapter
        reference = LoadedModel(loaded.model.to(device), loaded.tokenizer, loaded.identity)
    else:
        reference = load_model(settings.ref, "float32", str(device), settings.trust_remote_code)
        if tokenise_pairs(texts, Renderer(reference.tokenizer, settings.template, settings.eos),
                          settings.max_length, file) != pairs:  # fmt: skip
            raise GrapeError(f"--ref {settings.ref}: its tokenizer splits the pairs into other tokens than the "
                             f"model's ({settings.model}); DPO compares the two on the same tokens")  # fmt: skip
    chosen, rejected = reference_logps(texts, pairs, reference, settings.template, settings.eos, folder)
    if settings.ref is not None:
        del reference
        gc.collect()
    return dpo_dataset(pairs, chosen, rejected)


def _trainer(loaded: LoadedModel, dataset: Any, settings: DPOSettings, device: Any, out: Path | None, scratch: Path):
    from grape.training.last_step_log import LogLastStep
    from grape.training.preference_config import preference_config
    from grape.training.preference_trainers import RenderedDPOTrainer, RenderedSimPOTrainer

    folder = out / CHECKPOINTS if out is not None else scratch
    args = preference_config(settings, device, folder, save=out is not None)
    common = dict(model=loaded.model, args=args, train_dataset=dataset, processing_class=loaded.tokenizer,
                  peft_config=lora_config(settings), callbacks=[LogLastStep()])  # fmt: skip
    if settings.loss == "simpo":
        return RenderedSimPOTrainer(**common)
    return RenderedDPOTrainer(ref_model=None, **common)


def _metrics(
    trainer: Any, output: Any, pairs: list[PreferencePair], checkpoint: Path | None, reference_seconds: float | None,
    seconds: float,
) -> dict:  # fmt: skip
    history = [h for h in trainer.state.log_history if "loss" in h]
    accuracies = [h["rewards/accuracies"] for h in history if "rewards/accuracies" in h]
    return {
        "pairs": len(pairs),
        "chosen_tokens": sum(len(p.chosen_ids) for p in pairs),
        "rejected_tokens": sum(len(p.rejected_ids) for p in pairs),
        "steps": trainer.state.global_step,
        "resumed_from": str(checkpoint) if checkpoint else None,
        "train_loss": output.training_loss,
        "loss_first": history[0]["loss"] if history else None,
        "loss_last": history[-1]["loss"] if history else None,
        "loss_curve": [(h["step"], h["loss"]) for h in history],
        "reward_accuracy_last": accuracies[-1] if accuracies else None,
        "reference_seconds": None if reference_seconds is None else round(reference_seconds, 2),
        "seconds": round(seconds, 2),
    }
