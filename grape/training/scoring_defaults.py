"""How the selection was scored, as defaults of `grape sft`: GRAPE chose each response for the model that
scored it, rendered with one template, so sft trains that model on that text unless told otherwise.

The selection's sidecar (``<selected>.meta.json``, written by `grape select`) carries the scoring settings
(``score_settings``: ``model``, ``template``, ``eos``). A setting left None takes the scoring one (or, with
no sidecar, grape's default; without a template there, the one grape trained the model with, e.g. dpo on an sft
output); a setting given that differs from it is kept, with a warning.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

from grape.console import console
from grape.data.tables import read_sidecar, table_file
from grape.models.trained_template import trained_template
from grape.training.settings import DEFAULTS_WITHOUT_SIDECAR

T = TypeVar("T")

WHY = {
    "model": "GRAPE chose each response for the model that scored it",
    "template": "the model is then not trained on the text it was scored on",
    "eos": "the model is then not trained on the tokens it was scored on",
}


def selection_meta(selected: Any) -> dict[str, Any]:
    """The sidecar of a selection file (empty for rows given in memory, or a file without one)."""
    return read_sidecar(selected) if table_file(selected) is not None else {}


def with_scoring_defaults(
    settings: T, meta: dict[str, Any], stage: str = "sft", data: str = "selection"
) -> tuple[T, list[str]]:
    """(``settings`` with model, template and eos filled in from how the ``data`` was scored, warnings).
    ``settings``: SFTSettings, or DPOSettings (``stage="dpo"``, ``data="pairs"``: a pairs file's sidecar)."""
    scored = dict(meta.get("score_settings") or {})
    model = settings.model if settings.model is not None else scored.get("model")
    trained = trained_template(model) if settings.template is None and scored.get("template") is None else None
    if trained is not None:  # a grape-trained model: go on in its template
        scored["template"], where = trained
        console.print(f"{stage} uses --template {scored['template']}, the template {model} was trained with ({where})",
                      highlight=False, soft_wrap=True)  # fmt: skip
    filled, warnings = {}, []
    for key in DEFAULTS_WITHOUT_SIDECAR:
        mine, theirs = getattr(settings, key), scored.get(key)
        if mine is None:
            filled[key] = theirs if theirs is not None else DEFAULTS_WITHOUT_SIDECAR[key]
        elif theirs is not None and not same_setting(mine, theirs):
            verb = "was" if data == "selection" else "were"
            warnings.append(f"the {data} {verb} scored with {key} {theirs!r} but {stage} uses {mine!r}: {WHY[key]}")
    return replace(settings, **filled), warnings


def same_setting(a: Any, b: Any) -> bool:
    """Equal values, or two spellings of one local path (a model directory, a template file)."""
    if a == b:
        return True
    if isinstance(a, str) and isinstance(b, str) and Path(a).expanduser().exists():
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    return False
