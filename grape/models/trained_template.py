"""The template a model is prompted with: by default the one grape trained it with (`grape eval`, `decode`, `rl`).

`grape sft`, `dpo` and `rl` write their resolved settings beside the model (grape-sft.yaml, …), among them the
template whose tokens the model was trained on. Without `--template`, such a model is prompted in that template
(and any other model in `paper`), and the console says which; a template given explicitly is used as given, with a
warning when the model was trained with another: an evaluation in another format may be what the user wants.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grape.console import console

TRAINING_SETTINGS = ("grape-sft.yaml", "grape-dpo.yaml", "grape-rl.yaml")
DEFAULT_TEMPLATE = "paper"  # for a model grape did not train


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


def template_for_model(model: Any, template: str | None) -> str:
    """``template`` when given (warning when ``model`` was trained with another); else the template grape trained
    ``model`` with, said in one line; else ``paper``."""
    if template is not None:
        note_template_mismatch(model, template)
        return template
    trained = trained_template(model)
    if trained is None:
        return DEFAULT_TEMPLATE
    console.print(f"prompting with --template {trained[0]}, the template {model} was trained with ({trained[1]})",
                  highlight=False, soft_wrap=True)  # fmt: skip
    return trained[0]
