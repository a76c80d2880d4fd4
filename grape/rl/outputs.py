"""What a finished `grape rl` run leaves in OUTDIR, whichever the algorithm.

The policy (LoRA merged in) and tokenizer as a plain transformers directory (PPO: and ``value_head.pt``);
``rl-history.jsonl`` (one line of statistics per rollout batch); ``grape-rl.json`` (what was run, on which
model, the rows left out with ``on_error: skip``, its metrics and package versions; written last, so its
presence means "finished"); ``README.md`` (the model card). The resolved settings, ``grape-rl.yaml``, are
written before training starts; ``checkpoints/`` holds what a re-run with the same settings resumes from (PPO:
``step-*.pt``; GRPO: the trainer's ``checkpoint-*`` folders).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grape.config import settings_dict
from grape.data.tables import package_versions
from grape.errors import InputError
from grape.models.load import LoadedModel
from grape.rl.model_card import README, model_card
from grape.rl.settings import RLSettings

CONFIG_NAME, DONE_NAME, HISTORY_NAME, CHECKPOINTS = "grape-rl.yaml", "grape-rl.json", "rl-history.jsonl", "checkpoints"
VALUE_HEAD = "value_head.pt"  # PPO's value head (a state dict of one torch.nn.Linear)


@dataclass
class Trained:
    """What a training loop hands back: the policy as a plain model and its per-batch statistics."""

    model: Any  # a plain transformers causal LM (LoRA merged in)
    history: list[dict[str, Any]]  # one entry per rollout batch: step, reward, right, answered, kl, ...
    resumed_from: Path | None
    value_head: Any = None  # PPO's torch.nn.Linear; None for GRPO


def run_metrics(history: list[dict[str, Any]], resumed_from: Path | None, seconds: float) -> dict[str, Any]:
    """The run's summary: first and last reward and right-answer rate, last KL and value loss."""
    first, last = (history[0], history[-1]) if history else ({}, {})
    return {
        "steps": len(history),
        "reward_first": first.get("reward"),
        "reward_last": last.get("reward"),
        "right_first": first.get("right"),
        "right_last": last.get("right"),
        "kl_last": last.get("kl"),
        "value_loss_last": last.get("value_loss"),
        "resumed_from": str(resumed_from) if resumed_from else None,
        "seconds": round(seconds, 1),
    }


def write_outputs(
    loaded: LoadedModel,
    trained: Trained,
    settings: RLSettings,
    out: Path,
    data: str,
    n_questions: int,
    skipped: list[InputError],
    seconds: float,
) -> dict[str, Any]:
    """Write the model, tokenizer, history, model card and ``grape-rl.json``; returns the metrics.
    ``skipped``: the errors of the rows left out (``on_error: skip``), listed in ``grape-rl.json``."""
    metrics = run_metrics(trained.history, trained.resumed_from, seconds)
    (out / HISTORY_NAME).write_text("".join(json.dumps(h) + "\n" for h in trained.history), encoding="utf-8")
    if trained.value_head is not None:
        torch.save(trained.value_head.state_dict(), out / VALUE_HEAD)
    trained.model.save_pretrained(out)
    loaded.tokenizer.save_pretrained(out)
    command = f"grape rl {data} -o {out} --config {out / CONFIG_NAME}"
    card = model_card(settings, metrics, data, n_questions, loaded.identity, command, len(skipped))
    (out / README).write_text(card, encoding="utf-8")
    meta = {"stage": "rl", "algorithm": settings.algo, "data": data, "questions": n_questions,
            "skipped_rows": len(skipped), "skipped": [skipped_row(e) for e in skipped],
            "settings": settings_dict(settings), "model": loaded.identity, "metrics": metrics,
            "versions": package_versions()}  # fmt: skip
    (out / DONE_NAME).write_text(json.dumps(meta, indent=2, default=str) + "\n", encoding="utf-8")
    return metrics


def skipped_row(error: InputError) -> dict[str, Any]:
    """A row left out, as ``grape-rl.json`` lists it: its number, the field at fault and why."""
    return {"row": error.row, "field": error.field, "reason": error.reason}
