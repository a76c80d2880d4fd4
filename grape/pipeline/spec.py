"""Read a pipeline YAML as written: a workdir, defaults, and a list of named steps with `repeat:` blocks.

```yaml
workdir: runs/s3ft            # relative paths are relative to this YAML file
defaults: {model: gemma-3-270m, template: paper}   # given to every step that has the setting
steps:
  - {name: verify, type: verify, input: candidates.jsonl}
  - {name: score, type: score}                     # input: the nearest earlier verify or generate step
  - {name: select, type: select, strategy: grape}
  - {name: sft, type: sft, input: ${steps.select.output}, max_steps: 20}
  - repeat: 2                                      # score with the model just trained, select, train again
    steps:
      - {name: rescore, type: score, input: ${steps.verify.output}, model: ${steps.tune.output}}
      - {name: reselect, type: select}
      - {name: tune, type: sft, model: ${steps.tune.output}}
```

The older form, one mapping block per stage type (``stages: {score: {...}, select: {...}}``), is read as
the steps of those types in their fixed order, each named after its type. Nothing here resolves
references or builds settings (see plan.py); this file only checks the shape.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grape.config import read_yaml
from grape.errors import GrapeError
from grape.pipeline.stages import ORDER, STAGES

TOP_LEVEL = ("workdir", "defaults", "steps")
LEGACY = "stages"
NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")  # no dots: `score.2` is the folder of a repeated step


@dataclass
class StepSpec:
    name: str
    type: str
    block: dict[str, Any]  # its settings and input files as written (may hold ${...})
    where: str  # "<yaml>: steps.<name>", for error messages


@dataclass
class RepeatSpec:
    count: int
    steps: list[StepSpec]
    where: str


@dataclass
class PipelineSpec:
    source: Path
    workdir: Path
    defaults: dict[str, Any]
    items: list[StepSpec | RepeatSpec] = field(default_factory=list)

    def all_steps(self) -> list[StepSpec]:
        """Every step as written, those of repeat blocks included, in order."""
        return [s for item in self.items for s in (item.steps if isinstance(item, RepeatSpec) else [item])]


def read_spec(path: str | Path) -> PipelineSpec:
    source = Path(path)
    data = read_yaml(source)
    where = str(source)
    unknown = sorted(set(data) - {*TOP_LEVEL, LEGACY})
    if unknown:
        raise GrapeError(f"{where}: unknown key(s) {', '.join(unknown)}; a pipeline has {', '.join(TOP_LEVEL)}")
    defaults = data.get("defaults") or {}
    if not isinstance(defaults, dict):
        raise GrapeError(f"{where}: `defaults` must be a mapping of settings")
    if LEGACY in data and "steps" in data:
        raise GrapeError(f"{where}: give `steps:` (a list) or the older `stages:` mapping, not both")
    items = _legacy_steps(data[LEGACY], where) if LEGACY in data else _steps(data.get("steps"), where, "steps")
    names = [s.name for item in items for s in (item.steps if isinstance(item, RepeatSpec) else [item])]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GrapeError(f"{where}: step name(s) used twice: {', '.join(twice)}; each step needs a name of its own")
    workdir = source.parent / str(data.get("workdir") or source.stem)
    return PipelineSpec(source, workdir, dict(defaults), items)


def _steps(raw: Any, where: str, label: str, in_repeat: bool = False) -> list[StepSpec | RepeatSpec]:
    if not isinstance(raw, list) or not raw:
        raise GrapeError(f"{where}: `{label}` must be a list of steps, each {{name: ..., type: ..., settings}}")
    items: list[StepSpec | RepeatSpec] = []
    for index, entry in enumerate(raw):
        at = f"{where}: {label}[{index}]"
        if not isinstance(entry, dict):
            raise GrapeError(f"{at}: expected a step {{name: ..., type: ...}} or a {{repeat: N, steps: [...]}} block")
        if "repeat" in entry:
            items.append(_repeat(entry, where, at, in_repeat))
            continue
        name, kind = entry.get("name"), entry.get("type")
        if not isinstance(name, str) or not NAME.fullmatch(name):
            raise GrapeError(f"{at}: every step needs a `name:` of letters, digits, _ and - (got {name!r})")
        at = f"{where}: steps.{name}"
        if kind not in STAGES:
            raise GrapeError(f"{at}: unknown type {kind!r}; types are {', '.join(STAGES)}")
        block = {k: v for k, v in entry.items() if k not in ("name", "type")}
        items.append(StepSpec(name, kind, block, at))
    return items


def _repeat(entry: dict, where: str, at: str, in_repeat: bool) -> RepeatSpec:
    if in_repeat:
        raise GrapeError(f"{at}: a repeat block inside a repeat block; put the steps in one block")
    extra = sorted(set(entry) - {"repeat", "steps"})
    if extra:
        raise GrapeError(f"{at}: unknown key(s) {', '.join(extra)} in a repeat block (it has repeat and steps)")
    count = entry["repeat"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise GrapeError(f"{at}: `repeat:` must be a whole number of iterations, at least 1 (got {count!r})")
    steps = _steps(entry.get("steps"), where, f"{at.split(': ', 1)[1]}.steps", in_repeat=True)
    return RepeatSpec(count, [s for s in steps if isinstance(s, StepSpec)], at)


def _legacy_steps(blocks: Any, where: str) -> list[StepSpec | RepeatSpec]:
    """The older form: one block per stage type, run in the fixed ORDER, each step named after its type."""
    if not isinstance(blocks, dict) or not blocks:
        raise GrapeError(f"{where}: `stages` must map stage names ({', '.join(ORDER)}) to their settings")
    strange = sorted(set(blocks) - set(ORDER))
    if strange:
        raise GrapeError(f"{where}: unknown stage(s) {', '.join(strange)}; stages are {', '.join(ORDER)}")
    steps: list[StepSpec | RepeatSpec] = []
    for name in (n for n in ORDER if n in blocks):
        block = blocks[name] if blocks[name] is not None else {}
        if not isinstance(block, dict):
            raise GrapeError(f"{where}: stages.{name}: expected a mapping of settings")
        steps.append(StepSpec(name, name, dict(block), f"{where}: stages.{name}"))
    return steps
