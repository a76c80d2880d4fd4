"""The model card of a `grape dpo` output: README.md in OUTDIR (YAML metadata, then Markdown), as `model_card`
writes for sft: the base model, the pairs and how `grape pairs` made them (from their sidecar), the objective
and its reference, the settings, the result, and the command that made it."""

from __future__ import annotations

from typing import Any

import yaml

from grape.training.model_card import README, identity_text
from grape.training.settings import DPOSettings

__all__ = ["README", "preference_card"]

SHOWN = ("model", "template", "eos", "loss", "ref", "beta", "gamma", "cpo_alpha", "epochs", "max_steps", "lr",
         "lr_scheduler", "batch_size", "grad_accum", "max_length", "lora_r", "lora_alpha", "precision", "seed",
         "save")  # fmt: skip
OBJECTIVE = {
    "dpo": "DPO (TRL's DPOTrainer, sigmoid loss): −log σ(β·((log π(c) − log π_ref(c)) − (log π(r) − log π_ref(r)))) "
    "with summed log-probs of the response tokens",
    "simpo": "SimPO (TRL's experimental CPOTrainer, loss_type simpo): −log σ(β·(mean log π(c) − mean log π(r)) − γ), "
    "mean log-prob per response token, no reference model",
}


def preference_card(
    settings: DPOSettings,
    metrics: dict[str, Any],
    pairs: str,
    meta: dict[str, Any],
    identity: dict[str, Any],
    command: str,
) -> str:
    """The card's text. ``meta`` is the pairs file's sidecar ({} for rows given in memory)."""
    header: dict[str, Any] = {"library_name": "transformers", "tags": ["grape", settings.loss, "trl"]}
    if identity.get("kind") == "hub":
        header["base_model"] = settings.model
    if settings.save != "merged":
        header["tags"].append("peft")
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
             f"# {settings.model} trained with {settings.loss.upper()} on preference pairs", "",
             "## Base model", "", f"`{settings.model}`" + identity_text(identity), "",
             "## Data", "", *_data(pairs, meta, metrics), "",
             "## Objective", "", *_objective(settings, metrics), "",
             "## Training", "", "| setting | value |", "| --- | --- |",
             *(f"| {k} | {getattr(settings, k)} |" for k in SHOWN),
             *(f"| trainer.{k} | {v} |" for k, v in settings.trainer.items()), "",
             "## Result", "", *_result(metrics), "",
             "## Reproduce", "", "```bash", command, "```", "",
             "All settings, resolved: `grape-dpo.yaml`; the loss curve and package versions: `grape-dpo.json`.",
             ""]  # fmt: skip
    return "\n".join(lines)


def _data(pairs: str, meta: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    lines = [f"`{pairs}`: {metrics['pairs']} pairs; {metrics['chosen_tokens']} chosen and "
             f"{metrics['rejected_tokens']} rejected response tokens, rendered as they were scored."]  # fmt: skip
    if meta.get("stage") != "pairs":
        return [*lines, "", "Not written by `grape pairs` (no sidecar): how the pairs were chosen is unknown."]
    rules, summary = meta.get("settings") or {}, meta.get("summary") or {}
    scored = meta.get("score_settings") or {}
    lines += ["", f"Made by `grape pairs` from `{meta.get('scores')}`: chosen `{rules.get('chosen')}` from "
              f"`{rules.get('chosen_from')}`, rejected `{rules.get('rejected')}` from `{rules.get('rejected_from')}`"
              + (f", margin at least {rules['min_margin']}" if rules.get("min_margin") is not None else "")
              + f"; {summary.get('pairs')} pairs of {summary.get('instructions')} instructions.",
              "", f"Scored by `{scored.get('model')}` with template `{scored.get('template')}`."]  # fmt: skip
    return lines


def _objective(settings: DPOSettings, metrics: dict[str, Any]) -> list[str]:
    lines = [OBJECTIVE[settings.loss] + f"; β = {settings.beta}" + (f", γ = {settings.gamma}, NLL weight "
             f"{settings.cpo_alpha}" if settings.loss == "simpo" else "") + "."]  # fmt: skip
    if settings.loss == "dpo":
        reference = f"`{settings.ref}`" if settings.ref else "the base model before training"
        lines += ["", f"Reference: {reference}; its log-probs were computed once by grape's scoring engine "
                  f"({metrics.get('reference_seconds')} s) and handed to the trainer."]  # fmt: skip
    return lines


def _result(metrics: dict[str, Any]) -> list[str]:
    lines = [f"- steps: {metrics['steps']}" + (f" (resumed from {metrics['resumed_from']})"
                                              if metrics.get("resumed_from") else ""),
             f"- first and last loss: {metrics['loss_first']:.4f} → {metrics['loss_last']:.4f}"
             if metrics.get("loss_last") is not None else "- loss: none logged",
             f"- reward accuracy (last logged): {metrics['reward_accuracy_last']:.3f}"
             if metrics.get("reward_accuracy_last") is not None else "",
             f"- seconds: {metrics['seconds']}"]  # fmt: skip
    return [line for line in lines if line]
