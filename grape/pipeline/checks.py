"""Check a whole pipeline before its first step runs, so that a typo in the last step does not surface
after an hour of the first ones: values of the enum-like settings, each type's own checks, input
files, models, settings that must agree along the data path, and folders grape would not own.

Every problem is one line naming the YAML file and the step (``p.yaml: steps.select: strategy: ...``).
Names, references, cycles and unknown settings are caught while planning (spec.py, plan.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from grape.errors import GrapeError
from grape.generation.prompts import PROMPT_FORMATS
from grape.models.dtypes import ACCEPTED
from grape.models.fingerprint import model_fingerprint
from grape.pipeline import cache
from grape.pipeline.plan import Pipeline, StepPlan
from grape.selection.settings import FORMATS
from grape.selection.strategies import get_strategy
from grape.text import BUILTIN_TEMPLATES
from grape.verification.registry import NAMES as VERIFIERS

# The names grape.training.settings.use_bf16 accepts, kept here so that checking a pipeline does not
# import torch (tests/pipeline/test_pipeline_checks.py keeps them equal).
PRECISIONS = ("auto", "bf16", "bfloat16", "fp32", "float32")
# Settings that must agree between a step and the step whose output it reads: a model is trained and
# evaluated on exactly the text it was scored on.
SHARED = ("template", "eos")
RESOLVED = "pipeline.resolved.yaml"
RESOLVED_HEADER = "# resolved from "


def one_of(*choices: str) -> Callable[[Any], str | None]:
    return lambda value: None if value in choices else f"{value!r} is not one of {', '.join(choices)}"


def at_least(low: int) -> Callable[[Any], str | None]:
    return lambda value: None if value is None or value >= low else f"{value!r}: must be at least {low}"


def _strategy(value: str) -> str | None:
    try:
        get_strategy(value)
    except GrapeError as exc:
        return str(exc)
    return None


def _template(value: str) -> str | None:
    if value in BUILTIN_TEMPLATES or Path(value).is_file():
        return None
    return f"{value!r} is not one of {', '.join(BUILTIN_TEMPLATES)} and not a template file"


def _verifier(value: str) -> str | None:
    """A name of the registry (``math``), or one with its parameter (``regex:PATTERN`` as ``regex:^\\d+$``)."""
    for name in VERIFIERS:
        prefix, parametrised, _ = name.partition(":")
        if value == name or (parametrised and value.startswith(f"{prefix}:") and len(value) > len(prefix) + 1):
            return None
    return f"unknown verifier {value!r}: use one of {', '.join(VERIFIERS)}"


def _device(value: str) -> str | None:
    ok = value in ("auto", "cpu") or value == "cuda" or (value.startswith("cuda:") and value[5:].isdigit())
    return None if ok else f"{value!r} is not auto, cpu, cuda or cuda:N"


# A setting's name -> a check of its value (None when fine), for every step type that has the setting.
VALUE_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "strategy": _strategy,
    "format": one_of(*FORMATS),
    "dtype": one_of(*ACCEPTED),
    "precision": one_of(*PRECISIONS),
    "on_error": one_of("fail", "skip"),
    "layout": one_of("auto", "grouped", "long"),
    "prompt_format": one_of(*PROMPT_FORMATS),
    "template": _template,
    "verifier": _verifier,
    "device": _device,
    "part_size": at_least(1),
    "top_k": at_least(1),
    "batch_size": at_least(1),
    "n": at_least(1),
    "limit": at_least(1),  # eval and score check theirs only when they run; budget's eval.limit is nested
}
# A setting that means something else in one step type, whose own check (stages.py) covers it there.
OWN_VALUES = {("PrepareSettings", "format")}  # the tools step's format: auto | plain | chat


def check_pipeline(pipeline: Pipeline) -> None:
    """Raise a one-line GrapeError for the first problem found in any step; return when all are fine."""
    by_name = {p.name: p for p in pipeline.steps}
    fingerprinted: set[str] = set()
    for plan in pipeline.steps:
        _check_values(plan.settings, plan.where)
        if plan.stage.check is not None:
            try:
                plan.stage.check(plan.settings)
            except GrapeError as exc:
                raise GrapeError(f"{plan.where}: {exc}") from None
        linked = {r.label for r in plan.refs}
        for key, path in plan.inputs.items():
            if key not in linked and not path.exists():
                raise GrapeError(f"{plan.where}: {key}: {path} does not exist")
        model = getattr(plan.settings, "model", None)
        if isinstance(model, str) and "model" not in linked and model not in fingerprinted:
            try:
                model_fingerprint(model)  # the loader's own message for a model that is not there
            except GrapeError as exc:
                raise GrapeError(f"{plan.where}: model: {exc}") from None
            fingerprinted.add(model)
        _check_shared(plan, by_name)
        if not cache.is_grape_folder(plan.folder):
            raise GrapeError(f"{plan.where}: {cache.foreign_folder_message(plan.folder)}")
    resolved = pipeline.workdir / RESOLVED
    if resolved.exists() and not resolved.read_text(encoding="utf-8").startswith(RESOLVED_HEADER):
        raise GrapeError(f"{pipeline.source}: {resolved} exists and was not written by grape; move it away")


def _check_values(settings: Any, where: str) -> None:
    """Apply VALUE_CHECKS to every field of ``settings``, nested dataclasses included."""
    for field in dataclasses.fields(settings):
        value = getattr(settings, field.name)
        if dataclasses.is_dataclass(value):
            _check_values(value, f"{where}: {field.name}")
            continue
        check = None if (type(settings).__name__, field.name) in OWN_VALUES else VALUE_CHECKS.get(field.name)
        problem = check(value) if check is not None and value is not None else None
        if problem:
            raise GrapeError(f"{where}: {field.name}: {problem}")


def _check_shared(plan: StepPlan, by_name: dict[str, StepPlan]) -> None:
    """Each SHARED setting of ``plan`` equals that of the nearest step upstream of it that has the setting."""
    for key in SHARED:
        if not hasattr(plan.settings, key):
            continue
        for upstream in _nearest_with(plan, key, by_name):
            mine, theirs = getattr(plan.settings, key), getattr(upstream.settings, key)
            if mine is not None and mine != theirs:  # None (sft): taken from its input, so the same
                raise GrapeError(f"{plan.where}: `{key}` is {mine!r} but {upstream.name}, upstream of it, has "
                                 f"{theirs!r}; a model must be trained and evaluated on the text it was scored on: "
                                 f"set it once under `defaults`")  # fmt: skip


def _nearest_with(plan: StepPlan, key: str, by_name: dict[str, StepPlan]) -> list[StepPlan]:
    found, seen, todo = [], set(), [r.step for r in plan.refs]
    while todo:
        upstream = by_name[todo.pop()]
        if upstream.name in seen:
            continue
        seen.add(upstream.name)
        if getattr(upstream.settings, key, None) is not None:  # None (sft): the same as its own upstream
            found.append(upstream)
        else:
            todo += [r.step for r in upstream.refs]
    return found
