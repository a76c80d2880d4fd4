"""Command-line overrides of a pipeline's settings: ``steps.sft.max_steps=5`` (or ``sft.max_steps=5``),
``steps.generate.sampling.temperature=0.2``, ``defaults.model=smollm2-135m-instruct``.

The value is read as YAML (``5`` a number, ``true`` a boolean, ``[a, b]`` a list), as in the file. An
override sets the value in the step as written, so inside a repeat block it applies to every iteration,
and it may itself be a reference (``steps.tune.model='${steps.sft.output}'``).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Sequence
from typing import Any

import yaml

from grape.errors import GrapeError
from grape.pipeline.spec import PipelineSpec
from grape.pipeline.stages import STAGES

FORM = "steps.STEP.SETTING=VALUE"


def apply_overrides(spec: PipelineSpec, overrides: Sequence[str]) -> None:
    """Set each override in ``spec`` (in place); an unknown step or setting is a one-line error."""
    steps = {s.name: s for s in spec.all_steps()}
    for text in overrides:
        where = f"{spec.source}: override {text!r}"
        key, sep, raw = text.partition("=")
        path = key.strip().split(".")
        if path[0] == "steps":
            path = path[1:]
        if not sep or len(path) < 2 or not all(path):
            raise GrapeError(f"{where}: expected {FORM} (or STEP.SETTING=VALUE, defaults.SETTING=VALUE)")
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError as exc:
            raise GrapeError(f"{where}: the value is not valid YAML ({str(exc).splitlines()[0]})") from None
        if path[0] == "defaults":
            _set(spec.defaults, path[1:], value)
            continue
        step = steps.get(path[0])
        if step is None:
            raise GrapeError(f"{where}: no step named {path[0]!r}; steps are {', '.join(steps)}")
        stage = STAGES[step.type]
        if path[1] not in stage.files:
            _check_setting(stage.settings, path[1:], f"{where}: a {step.type} step")
        _set(step.block, path[1:], value)


def _check_setting(cls: type, path: list[str], where: str) -> None:
    """``path`` names a field of the settings dataclass ``cls`` (through nested dataclasses)."""
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    if path[0] not in names:
        raise GrapeError(f"{where} has no setting {path[0]!r}; it has {', '.join(names)}")
    if len(path) > 1:
        hint = hints[path[0]]
        if dataclasses.is_dataclass(hint):
            _check_setting(hint, path[1:], f"{where}, in {path[0]},")
        elif typing.get_origin(hint) is not dict:
            raise GrapeError(f"{where}: {path[0]} is not a group of settings")


def _set(mapping: dict[str, Any], path: list[str], value: Any) -> None:
    *parents, last = path
    for part in parents:
        inner = mapping.get(part)
        mapping[part] = dict(inner) if isinstance(inner, dict) else {}
        mapping = mapping[part]
    mapping[last] = value
