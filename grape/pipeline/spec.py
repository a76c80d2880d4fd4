"""Read a pipeline YAML into a plan: the stages present, in order, with resolved settings and inputs.

```yaml
workdir: runs/example          # relative paths are relative to this YAML file
defaults: {model: gemma-3-270m, template: paper}   # given to every stage that has the setting
stages:
  score: {input: candidates.jsonl}
  select: {strategy: grape}
  sft: {max_steps: 20, lora_r: 8}
  eval: {data: heldout.jsonl, limit: 50}
```
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grape.errors import GrapeError
from grape.pipeline.stages import EXTRA_INPUTS, ORDER, STAGES
from grape.training.config import read_yaml, settings_from_dict

TOP_LEVEL = ("workdir", "defaults", "stages")
# Settings that must agree between stages: the model is trained on exactly the text it was scored on.
SHARED = ("template", "eos")


@dataclass
class StagePlan:
    name: str
    settings: Any  # the stage's settings dataclass, resolved
    folder: Path  # <workdir>/<name>
    output: Path  # what it writes, inside folder
    inputs: dict[str, Path] = field(default_factory=dict)  # files given in the YAML
    from_stages: dict[str, str] = field(default_factory=dict)  # input name -> the stage whose output it is


@dataclass
class Pipeline:
    source: Path
    workdir: Path
    stages: list[StagePlan]


def parse_pipeline(path: str | Path) -> Pipeline:
    source = Path(path)
    data = read_yaml(source)
    where = str(source)
    unknown = sorted(set(data) - set(TOP_LEVEL))
    if unknown:
        raise GrapeError(f"{where}: unknown key(s) {', '.join(unknown)}; a pipeline has {', '.join(TOP_LEVEL)}")
    base = source.parent
    blocks = data.get("stages") or {}
    if not isinstance(blocks, dict) or not blocks:
        raise GrapeError(f"{where}: `stages` must map stage names ({', '.join(ORDER)}) to their settings")
    strange = sorted(set(blocks) - set(ORDER))
    if strange:
        raise GrapeError(f"{where}: unknown stage(s) {', '.join(strange)}; stages are {', '.join(ORDER)}")
    present = [name for name in ORDER if name in blocks]
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise GrapeError(f"{where}: `defaults` must be a mapping of settings")
    known = {f.name for name in present for f in dataclasses.fields(STAGES[name].settings)}
    if set(defaults) - known:
        raise GrapeError(f"{where}: defaults {sorted(set(defaults) - known)} are settings of no stage present")
    workdir = base / str(data.get("workdir") or source.stem)
    plans = [_plan(name, blocks[name] or {}, defaults, present, base, workdir, where) for name in present]
    _check_shared(plans, where)
    return Pipeline(source, workdir, plans)


def _plan(name: str, block: Any, defaults: dict, present: list[str], base: Path, workdir: Path, where: str):
    stage = STAGES[name]
    where = f"{where}: stages.{name}"
    if not isinstance(block, dict):
        raise GrapeError(f"{where}: expected a mapping of settings")
    block = dict(block)
    paths = {key: base / str(block.pop(key)) for key in stage.takes if block.get(key) is not None}
    fields = {f.name for f in dataclasses.fields(stage.settings)}
    values = {**{k: v for k, v in defaults.items() if k in fields}, **block}
    for key in ("model", "template"):  # a local path is relative to the YAML; an alias or built-in name is kept
        if isinstance(values.get(key), str) and (base / values[key]).exists():
            values[key] = str(base / values[key])
    settings = settings_from_dict(stage.settings, values, where)
    folder = workdir / name
    plan = StagePlan(name, settings, folder, folder / stage.output, inputs=paths)
    for key in stage.takes:
        if key in paths:
            continue
        source = next((s for s in reversed(present[: present.index(name)]) if s in stage.upstream), None)
        if key != "input" or source is None:
            earlier = f" or add one of {', '.join(stage.upstream)} before it" if stage.upstream else ""
            raise GrapeError(f"{where}: no `{key}:` given{earlier}")
        plan.from_stages[key] = source
    for key, source in EXTRA_INPUTS.get(name, {}).items():
        if source in present:
            plan.from_stages[key] = source
    return plan


def _check_shared(plans: list[StagePlan], where: str) -> None:
    for key in SHARED:
        values = {p.name: getattr(p.settings, key) for p in plans if hasattr(p.settings, key)}
        if len(set(values.values())) > 1:
            shown = ", ".join(f"{stage}: {value!r}" for stage, value in values.items())
            raise GrapeError(f"{where}: `{key}` differs between stages ({shown}); the model must be trained and "
                             f"evaluated on the text it was scored on: set it once under `defaults`")  # fmt: skip
