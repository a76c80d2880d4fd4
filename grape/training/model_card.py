"""The model card of a `grape sft` output: README.md in OUTDIR, in the Hugging Face layout (YAML metadata,
then Markdown): the base model, the data and how GRAPE selected it (from the selection's sidecar), the
settings, the final loss, and the command that made it."""

from __future__ import annotations

from typing import Any

import yaml

from grape.training.settings import SFTSettings

README = "README.md"
# The settings shown in the card's table; all of them are in grape-sft.yaml beside it.
SHOWN = ("model", "template", "eos", "loss", "epochs", "max_steps", "lr", "lr_scheduler", "batch_size",
         "grad_accum", "max_length", "lora_r", "lora_alpha", "precision", "padding_free", "seed", "save")  # fmt: skip


def model_card(
    settings: SFTSettings,
    metrics: dict[str, Any],
    selected: str,
    meta: dict[str, Any],
    identity: dict[str, Any],
    command: str,
) -> str:
    """The card's text. ``meta`` is the selection's sidecar ({} for rows given in memory); ``identity`` the
    base model's (grape.models.load.LoadedModel.identity)."""
    header: dict[str, Any] = {"library_name": "transformers", "tags": ["grape", "sft", "trl"]}
    if identity.get("kind") == "hub":
        header["base_model"] = settings.model
    if settings.save != "merged":
        header["tags"].append("peft")
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
             f"# {settings.model} fine-tuned on a GRAPE selection", "",
             "## Base model", "", f"`{settings.model}`" + identity_text(identity), "",
             "## Data", "", *_data(selected, meta, metrics), "",
             "## Training", "", *_settings_table(settings), "",
             "## Result", "", *_result(metrics, settings), "",
             "## Reproduce", "", "```bash", command, "```", "",
             "All settings, resolved: `grape-sft.yaml`; the loss curve and package versions: `grape-sft.json`.",
             ""]  # fmt: skip
    return "\n".join(lines)


def identity_text(identity: dict[str, Any]) -> str:
    """`` (gemma3_text, 268,098,176 parameters)``: what a model card says after the base model's name."""
    parts = [f"{identity[k]}" for k in ("model_type",) if identity.get(k)]
    if identity.get("n_parameters"):
        parts.append(f"{identity['n_parameters']:,} parameters")
    return f" ({', '.join(parts)})" if parts else ""


def _data(selected: str, meta: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    lines = [f"`{selected}`: {metrics['examples']} examples, {metrics['response_tokens']} response tokens "
             "(the loss falls on response tokens only)."]  # fmt: skip
    if meta.get("stage") != "select":
        return [*lines, "", "Not a selection written by `grape select` (no sidecar): how it was chosen is unknown."]
    summary, chosen = meta.get("summary") or {}, meta.get("settings") or {}
    scored = meta.get("score_settings") or {}
    lines += ["", f"Selected by `grape select` from `{meta.get('scores')}`: strategy `{chosen.get('strategy')}`, "
              f"top {chosen.get('top_k') or 'all'} per instruction"
              + (", verified-correct candidates only" if chosen.get("require_correct") else "")
              + f"; {summary.get('selected')} of {summary.get('candidates_scored')} scored candidates "
              f"over {summary.get('instructions')} instructions.",
              "", f"Scored by `{scored.get('model')}` with template `{scored.get('template')}` "
              f"(EOS {'scored' if scored.get('eos', True) else 'not scored'})"
              + (": GRAPE keeps the candidates the model finds most probable (mean log-probability per response "
                 "token)." if chosen.get("strategy") == "grape" else ".")]  # fmt: skip
    sources = summary.get("sources") or {}
    if sources:
        lines += ["", "| source | candidates | chosen | share |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {name} | {s['candidates']} | {s['chosen']} | {s['chosen_share']:.1%} |"
                  for name, s in sources.items()]  # fmt: skip
    return lines


def _settings_table(settings: SFTSettings) -> list[str]:
    rows = [(name, getattr(settings, name)) for name in SHOWN]
    rows += [(f"trainer.{k}", v) for k, v in settings.trainer.items()]
    return ["| setting | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]


def _result(metrics: dict[str, Any], settings: SFTSettings) -> list[str]:
    last = metrics.get("loss_last")
    part = " (of the steps run after the resume)" if metrics.get("resumed_from") else ""  # transformers counts those
    lines = [f"- steps: {metrics['steps']}" + (f" (resumed from {metrics['resumed_from']})"
                                              if metrics.get("resumed_from") else ""),
             f"- final loss: {last:.4f} nats per response token" if last is not None else "- final loss: none logged",
             f"- mean training loss: {metrics['train_loss']:.4f}{part}" if metrics.get("train_loss") is not None
             else "",
             f"- seconds: {metrics['seconds']}{part}",
             f"- saved: {_saved(settings)}"]  # fmt: skip
    return [line for line in lines if line]


def _saved(settings: SFTSettings) -> str:
    dtype = "bfloat16" if settings.precision == "bf16" else "float32"
    merged = f"the model in {dtype}" + (" (LoRA merged into the weights)" if settings.lora_r else "")
    adapter = "the PEFT adapter in `adapter/`"
    return {"merged": merged, "adapter": adapter, "both": f"{merged}; {adapter}"}[settings.save]
