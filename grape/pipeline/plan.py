"""Turn the steps as written into the steps as they run: repeat blocks unrolled, references resolved,
implicit inputs linked, defaults filled in, settings built.

References: ``${steps.NAME.output}`` is the output of an earlier step (a path), ``${iteration}`` the
1-based iteration of the enclosing repeat block. Inside a block, ``${steps.X.output}`` names this
iteration's X when X is in the block and already ran this iteration, else the latest X that ran (the
previous iteration's); in the first iteration a step of the block that has not run yet stands for the
step just before the block (e.g. ``model: ${steps.tune.output}`` trains the warm-up model first).
Steps run in the order written, so a reference can only point back: a reference to the step itself or
to a later one is an error (outside a block, that would be a cycle).

A step without ``input:`` takes the output of the nearest earlier step of a linked type (stages.py);
the order of precedence for any key is: the step's own block, then a link, then ``defaults``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grape.config import settings_from_dict
from grape.errors import GrapeError
from grape.pipeline.spec import PipelineSpec, RepeatSpec, StepSpec
from grape.pipeline.stages import STAGES, Stage

REFERENCE = re.compile(r"\$\{([^}]*)\}")
STEP_OUTPUT = re.compile(r"steps\.([A-Za-z][A-Za-z0-9_-]*)\.output")
# Settings that name a model, and settings that may name a file (a Jinja template, eval's decode YAML): a local
# path is relative to the YAML (an alias, a Hub id or a built-in name is kept), and keys.py fingerprints both.
MODEL_SETTINGS = ("model", "ref", "baseline", "reward", "baseline_reward")
FILE_SETTINGS = ("template", "prompt_format", "reward_template", "decode")
RELATIVE_TO_YAML = (*MODEL_SETTINGS, *FILE_SETTINGS)
# Settings that name a file a step writes beside its own folder (mcts's kept searches): relative to the YAML,
# existing or not, and not fingerprinted (a place, not an input).
PLACE_SETTINGS = ("trees",)


@dataclass(frozen=True)
class Ref:
    """The value at ``path`` (a key, or keys and list indices into a setting) holds ``step``'s output."""

    path: tuple[str | int, ...]
    step: str  # the name of the run of that step (``tune.2``)
    output: Path  # its output

    @property
    def label(self) -> str:
        return key_label(self.path)


def key_label(path: tuple[str | int, ...]) -> str:
    """``("models", 0)`` -> ``models[0]``: how a place in a step's settings is named in messages and keys."""
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


@dataclass
class StepPlan:
    name: str  # its folder's name: the step's name, plus .<iteration> inside a repeat block
    step: str  # the name as written
    type: str
    where: str
    iteration: int | None
    settings: Any  # the type's settings dataclass, resolved
    folder: Path  # <workdir>/<name>
    output: Path  # what it writes, inside folder
    inputs: dict[str, Path] = field(default_factory=dict)  # input files by key
    refs: list[Ref] = field(default_factory=list)  # which values are other steps' outputs

    @property
    def stage(self) -> Stage:
        return STAGES[self.type]

    def ref_of(self, key: str) -> str | None:
        return next((r.step for r in self.refs if r.path == (key,)), None)


@dataclass
class Pipeline:
    source: Path
    workdir: Path
    steps: list[StepPlan]


def plan_pipeline(spec: PipelineSpec) -> Pipeline:
    planner = _Planner(spec)
    for item in spec.items:
        if isinstance(item, RepeatSpec):
            before = planner.plans[-1].name if planner.plans else None
            block = frozenset(s.name for s in item.steps)
            for iteration in range(1, item.count + 1):
                for step in item.steps:
                    planner.add(step, iteration, block, before)
        else:
            planner.add(item)
    return Pipeline(spec.source, spec.workdir, planner.plans)


@dataclass(frozen=True)
class _Place:
    """Where a step is being planned: which iteration of which repeat block, and what ran just before it."""

    step: StepSpec
    iteration: int | None
    block: frozenset[str]  # the names of the block's steps (empty outside a block)
    before: str | None  # the run just before the block


class _Planner:
    def __init__(self, spec: PipelineSpec):
        self.spec, self.base = spec, spec.source.parent
        self.names = [s.name for s in spec.all_steps()]
        self.plans: list[StepPlan] = []
        self.latest: dict[str, StepPlan] = {}  # written name -> the last of its runs planned so far
        present = {s.type for s in spec.all_steps()}
        known = {f.name for t in present for f in dataclasses.fields(STAGES[t].settings)}
        strange = sorted(set(spec.defaults) - known)
        if strange:
            raise GrapeError(f"{spec.source}: defaults {', '.join(strange)}: a setting of no step type present")

    def add(self, step: StepSpec, iteration: int | None = None, block: frozenset[str] = frozenset(), before=None):
        """Plan one run of ``step`` (in ``iteration`` of a repeat ``block`` whose preceding step is ``before``)."""
        at = _Place(step, iteration, block, before)
        stage = STAGES[step.type]
        name = step.name if iteration is None else f"{step.name}.{iteration}"
        fields = {f.name for f in dataclasses.fields(stage.settings)}
        unknown = sorted(set(step.block) - fields - set(stage.files))
        if unknown:
            known = ", ".join([*stage.files, *sorted(fields)])
            raise GrapeError(f"{step.where}: unknown setting(s) {', '.join(unknown)}; a {step.type} step has {known}")
        refs: list[Ref] = []
        values: dict[str, Any] = {}
        for key, value in step.block.items():
            values[key] = self._resolve(value, (key,), at, refs)
        for key, types in stage.links.items():
            source = next((p for p in reversed(self.plans) if p.type in types), None)
            if key not in values and source is not None:
                values[key] = str(source.output)
                refs.append(Ref((key,), source.name, source.output))
        for key, value in self.spec.defaults.items():
            if key in fields and key not in values:
                values[key] = self._resolve(value, (key,), at, refs)
        linked = {r.path[0] for r in refs}
        for key in RELATIVE_TO_YAML:
            value = values.get(key)
            if key not in linked and isinstance(value, str) and (self.base / value).exists():
                values[key] = str(self.base / value)
        for key in PLACE_SETTINGS:
            value = values.get(key)
            if key not in linked and isinstance(value, str):
                values[key] = str(self.base / value)
        for entry in values.get("models") or []:  # a generator given as a mapping: its own model and template
            for key in RELATIVE_TO_YAML if isinstance(entry, dict) else ():
                value = entry.get(key)
                if isinstance(value, str) and "${" not in value and (self.base / value).exists():
                    entry[key] = str(self.base / value)
        inputs = {}
        for key in stage.files:
            value = values.pop(key, None)
            if value is not None:
                inputs[key] = Path(value) if key in linked else self.base / str(value)
            elif key not in stage.optional:
                kinds = stage.links.get(key, ())
                earlier = f", or put a {' or '.join(kinds)} step before it" if kinds else ""
                raise GrapeError(f"{step.where}: no `{key}:` given{earlier}")
        settings = settings_from_dict(stage.settings, values, step.where)
        folder = self.spec.workdir / name
        plan = StepPlan(name, step.name, step.type, step.where, iteration, settings, folder,
                        folder / stage.output, inputs, refs)  # fmt: skip
        self.plans.append(plan)
        self.latest[step.name] = plan

    def _resolve(self, value: Any, path: tuple, at: _Place, refs: list[Ref]) -> Any:
        """``value`` with every ${...} replaced; a whole ``${iteration}`` becomes a number."""
        if isinstance(value, dict):
            return {k: self._resolve(v, (*path, k), at, refs) for k, v in value.items()}
        if isinstance(value, list):
            return [self._resolve(v, (*path, i), at, refs) for i, v in enumerate(value)]
        if not isinstance(value, str) or "${" not in value:
            return value
        where = f"{at.step.where}: {key_label(path)}"
        iteration = at.iteration
        if value == "${iteration}" and iteration is not None:
            return iteration

        def replace(match: re.Match) -> str:
            text = match.group(1).strip()
            if text == "iteration":
                if iteration is None:
                    raise GrapeError(f"{where}: ${{iteration}} is only defined inside a repeat block")
                return str(iteration)
            wanted = STEP_OUTPUT.fullmatch(text)
            if wanted is None:
                usable = "${steps.NAME.output} or ${iteration}"
                raise GrapeError(f"{where}: unknown reference ${{{text}}}; use {usable}")
            source = self._step_output(wanted.group(1), at, where)
            refs.append(Ref(path, source.name, source.output))
            return str(source.output)

        resolved = REFERENCE.sub(replace, value)
        if "${" in resolved:
            raise GrapeError(f"{where}: unbalanced ${{...}} in {value!r}")
        return resolved

    def _step_output(self, wanted: str, at: _Place, where: str) -> StepPlan:
        if wanted == at.step.name and at.iteration is None:
            raise GrapeError(f"{where}: ${{steps.{wanted}.output}} is the step's own output (a cycle)")
        if wanted in self.latest:
            return self.latest[wanted]
        if wanted in at.block:  # first iteration, and that step of the block has not run yet
            if at.before is None:
                raise GrapeError(f"{where}: in the first iteration ${{steps.{wanted}.output}} has not run yet, and "
                                 f"no step comes before the repeat block to stand in for it")  # fmt: skip
            return next(p for p in self.plans if p.name == at.before)
        if wanted in self.names:
            raise GrapeError(f"{where}: ${{steps.{wanted}.output}} runs after this step (steps run in the order "
                             f"written; a reference must point back, or it would be a cycle)")  # fmt: skip
        raise GrapeError(f"{where}: ${{steps.{wanted}.output}}: no step named {wanted!r}; steps are "
                         f"{', '.join(self.names)}")  # fmt: skip
