"""The warm-up model, template and EOS of an rl run that were not given, chosen as `grape sft` and `grape eval` do.

Model and EOS: the ones the questions were prepared or scored for (their sidecar's ``score_settings``, which
`grape tools prepare --model` and `grape select` write), else grape's defaults: sft's rule, through its function
(grape.training.scoring_defaults). Template: the one grape trained the warm-up model with (the grape-sft.yaml, …
beside it: eval's and decode's rule, grape.models.trained_template), else the sidecar's, else ``paper``; the
console says which. A template given that differs from the model's is kept, with their warning.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from grape.console import console
from grape.data.tables import sidecar_path
from grape.models.trained_template import template_for_model, trained_template
from grape.rl.settings import RLSettings
from grape.training.scoring_defaults import selection_meta, with_scoring_defaults


def with_model_defaults(settings: RLSettings, data: str | Path) -> RLSettings:
    """``settings`` with model, template and eos filled in where None (warnings and the template's source said)."""
    scored = dict(selection_meta(data).get("score_settings") or {})
    if settings.model is not None:
        # the warm-up model given is, as a rule, one trained from the model the rows were prepared for: not a mismatch
        scored.pop("model", None)
    model = settings.model if settings.model is not None else scored.get("model")
    trained = trained_template(model) if settings.template is None else None
    if trained is not None:  # the model's own template comes before the sidecar's (said once, below)
        scored["template"] = trained[0]
    filled, warnings = with_scoring_defaults(settings, {"score_settings": scored}, stage="rl", data="questions")
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
    if settings.template is None and trained is None:
        console.print(f"prompting with --template {filled.template}, {_template_source(data, scored)}",
                      highlight=False, soft_wrap=True)  # fmt: skip
        return filled
    return replace(filled, template=template_for_model(filled.model, settings.template))


def _template_source(data: str | Path, scored: dict) -> str:
    if scored.get("template") is not None:
        return f"the template {data} was prepared with ({sidecar_path(data)})"
    return "grape's default"
