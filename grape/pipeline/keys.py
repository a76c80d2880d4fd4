"""A step's key: a hash of its type, its settings and the fingerprints of what it reads; and, by comparing
a key with the one a finished step recorded, why a step would run again.

Input files are fingerprinted by content; an earlier step's output by the content hash recorded when
it was written (and verified before it is passed on, cache.py); a model given by name or path by
`grape.models.fingerprint.model_fingerprint` (``model``, DPO's ``ref``, decoding's ``baseline``,
``reward`` and ``baseline_reward``, generators' models); a Jinja template file (a step's ``template``,
``prompt_format`` or ``reward_template``, a generator's own ``template``) and eval's ``decode`` YAML by
content, so that editing one reruns the steps that read it. In the settings that are hashed, a value that names an
earlier step's output stands as a placeholder, so that the key follows that output's content, not the
place of the workdir: a copied or moved workdir stays cached.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape import __version__
from grape.config import settings_dict
from grape.generation.backend import GeneratorSpec
from grape.models.fingerprint import model_fingerprint
from grape.pipeline import cache
from grape.pipeline.plan import FILE_SETTINGS, MODEL_SETTINGS, Ref, StepPlan
from grape.text import BUILTIN_TEMPLATES

PLACEHOLDER = "<output of an earlier step>"


@dataclass
class Identity:
    key: str
    settings: dict[str, Any]  # as hashed (earlier steps' outputs as placeholders)
    inputs: dict[str, str]  # fingerprints of what the step reads, by key


def stage_key(kind: str, settings: dict[str, Any], fingerprints: dict[str, str]) -> str:
    payload = {"stage": kind, "grape": __version__, "settings": settings, "inputs": fingerprints}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def step_identity(plan: StepPlan, output_hashes: Mapping[str, str]) -> Identity:
    """The key of ``plan``, given the content hashes of the outputs of the steps before it."""
    settings = settings_dict(plan.settings)
    inputs: dict[str, str] = {}
    linked = {r.label for r in plan.refs}
    for key, path in plan.inputs.items():
        if key not in linked:
            inputs[key] = cache.content_hash(path)
    for ref in plan.refs:
        inputs[ref.label] = output_hashes[ref.step]
        if ref.path[0] not in plan.inputs:
            _set_placeholder(settings, ref)
    for label, spec in _model_specs(plan, linked):  # a local model may change under the same path
        inputs[f"settings.{label}"] = model_fingerprint(spec)
    for label, path in _setting_files(plan):  # a template may change under the same name
        inputs[f"settings.{label}"] = cache.content_hash(path)
    return Identity(stage_key(plan.type, settings, inputs), settings, inputs)


def reason_to_run(plan: StepPlan, identity: Identity) -> str | None:
    """Why ``plan`` must run (new, settings changed, input changed, output changed), or None when cached."""
    state = cache.finished_state(plan.folder)
    if state is None:
        started = cache.marker(plan.folder)
        return "resumes an interrupted run" if started and started.get("key") == identity.key else "new"
    if state.get("key") != identity.key:
        changed = changed_keys(state.get("settings") or {}, identity.settings)
        if changed:
            return f"settings changed: {', '.join(changed)}"
        inputs = state.get("inputs") or {}
        moved = sorted(k for k in {*inputs, *identity.inputs} if inputs.get(k) != identity.inputs.get(k))
        return f"input changed: {', '.join(moved)}" if moved else "made by another grape version"
    return cache.output_problem(state, plan.output)


def _model_specs(plan: StepPlan, linked: set[str]) -> list[tuple[str, str]]:
    """The models a step loads by name or path (not those that are earlier steps' outputs)."""
    specs = []
    for key in MODEL_SETTINGS:
        model = getattr(plan.settings, key, None)
        if isinstance(model, str) and key not in linked:
            specs.append((key, model))
    for index, text in enumerate(getattr(plan.settings, "models", None) or []):
        generator = GeneratorSpec.parse(text)
        if generator.backend == "hf" and not {f"models[{index}]", f"models[{index}].model"} & linked:
            specs.append((f"models[{index}]", generator.model))
    return specs


def _setting_files(plan: StepPlan) -> list[tuple[str, Path]]:
    """The files a step's settings name: Jinja templates, its own and its generators' (not the built-in names),
    and eval's decode YAML."""
    named = [(key, getattr(plan.settings, key, None)) for key in FILE_SETTINGS]
    for index, entry in enumerate(getattr(plan.settings, "models", None) or []):
        named.append((f"models[{index}].template", GeneratorSpec.parse(entry).template))
    return [(label, Path(value)) for label, value in named
            if isinstance(value, str) and value not in BUILTIN_TEMPLATES and Path(value).is_file()]  # fmt: skip


def changed_keys(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """The dotted keys whose values differ between two nested mappings."""
    names = []
    for key in sorted({*old, *new}):
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            names += changed_keys(a, b, f"{prefix}{key}.")
        elif a != b:
            names.append(f"{prefix}{key}")
    return names


def _set_placeholder(settings: dict[str, Any], ref: Ref) -> None:
    """Replace the output's path in the setting at ``ref.path`` (keys and list indices) by the placeholder."""
    *parents, last = ref.path
    holder: Any = settings
    for part in parents:
        holder = holder[part]
    holder[last] = holder[last].replace(str(ref.output), PLACEHOLDER)
