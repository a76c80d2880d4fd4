"""A warning before evaluating: the model was trained by grape with one template and is prompted with another.

`grape sft`, `dpo` and `rl` write their resolved settings beside the model (grape-sft.yaml, …), among them the
template whose tokens the model was trained on. `grape eval`'s template is its own setting (default `paper`), so a
chat-trained model evaluated without `--template chat` is prompted in a format it never saw; this says so. A
warning, not a switch: an evaluation in another format may be what the user wants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grape.console import console

TRAINING_SETTINGS = ("grape-sft.yaml", "grape-dpo.yaml", "grape-rl.yaml")


def trained_template(model: Any) -> tuple[str, str] | None:
    """(template, settings file) a grape training run wrote beside ``model`` (a local folder), or None."""
    if not isinstance(model, str | Path) or not Path(model).is_dir():
        return None
    for name in TRAINING_SETTINGS:
        path = Path(model) / name
        if path.is_file():
            settings = yaml.safe_load(path.read_text()) or {}
            template = settings.get("template") if isinstance(settings, dict) else None
            return (str(template), str(path)) if template else None
    return None


def template_mismatch_warning(model: Any, template: str) -> str | None:
    """The warning for evaluating ``model`` with ``template``, or None when it was trained with that one."""
    trained = trained_template(model)
    if trained is None or trained[0] == template:
        return None
    return (f"{model} was trained with --template {trained[0]} ({trained[1]}) but is evaluated with --template "
            f"{template}: pass --template {trained[0]} to prompt it with the tokens it was trained on")  # fmt: skip


def note_template_mismatch(model: Any, template: str) -> None:
    warning = template_mismatch_warning(model, template)
    if warning:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False, soft_wrap=True)
