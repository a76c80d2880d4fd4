"""`grape run`: run the steps of a pipeline in order, each only when its key (settings + inputs) changed.

Beside the outputs: ``pipeline.resolved.yaml`` (every step as it runs: type, inputs, settings with
defaults filled in) and ``run-log.jsonl`` (one line per step and run: cached, ran or resumed, and how long).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grape.config import settings_dict
from grape.console import console
from grape.errors import GrapeError
from grape.pipeline import cache
from grape.pipeline.checks import RESOLVED, RESOLVED_HEADER
from grape.pipeline.keys import reason_to_run, step_identity
from grape.pipeline.load import load_pipeline
from grape.pipeline.plan import Pipeline, StepPlan


@dataclass
class Outcome:
    step: str  # the run's name: the step's, plus .<iteration> inside a repeat block
    type: str
    status: str  # cached | ran | resumed
    key: str
    output: Path
    output_hash: str
    seconds: float


def run_pipeline(path: str | Path, force: Sequence[str] = (), overrides: Sequence[str] = ()) -> list[Outcome]:
    """Run (or reuse) every step of the pipeline at ``path``.

    ``force`` names steps to redo regardless (a step's name covers all its iterations; ``score.2`` one);
    ``overrides`` are ``steps.NAME.SETTING=VALUE`` strings. The whole pipeline is checked first.
    """
    pipeline = load_pipeline(path, overrides)
    forced = forced_steps(pipeline, force)
    pipeline.workdir.mkdir(parents=True, exist_ok=True)
    write_resolved(pipeline)
    hashes: dict[str, str] = {}
    outcomes = []
    for plan in pipeline.steps:
        outcome = _run_step(plan, hashes, plan.name in forced)
        hashes[plan.name] = outcome.output_hash
        outcomes.append(outcome)
        _log(pipeline.workdir, outcome)
    return outcomes


def forced_steps(pipeline: Pipeline, force: Sequence[str]) -> set[str]:
    """The runs that ``force`` names: by a step's name (every iteration) or a run's (``score.2``)."""
    runs = {p.name for p in pipeline.steps} | {p.step for p in pipeline.steps}
    unknown = sorted(set(force) - runs)
    if unknown:
        raise GrapeError(f"--force {', '.join(unknown)}: not a step of {pipeline.source}")
    return {p.name for p in pipeline.steps if p.name in force or p.step in force}


def _run_step(plan: StepPlan, hashes: dict[str, str], force: bool) -> Outcome:
    identity = step_identity(plan, hashes)
    reason = "forced" if force else reason_to_run(plan, identity)
    if reason is None:
        state = cache.finished_state(plan.folder) or {}
        console.print(f"[dim]• {plan.name}: cached[/]", highlight=False)
        return Outcome(plan.name, plan.type, "cached", identity.key, plan.output, state["output_hash"], 0.0)
    resumed = cache.begin(plan.folder, plan.name, plan.type, identity.key, plan.stage.kept)
    console.rule(f"{plan.name} ({plan.type}): {'resuming' if resumed else reason}", align="left")
    started = time.time()
    plan.stage.run(plan.settings, plan.inputs, plan.output)
    seconds = round(time.time() - started, 2)
    output_hash, output_size = cache.content_hash(plan.output), cache.content_size(plan.output)
    cache.finish(plan.folder, {"step": plan.name, "type": plan.type, "key": identity.key,
                               "settings": identity.settings, "inputs": identity.inputs,
                               "output": plan.output.name, "output_size": output_size, "output_hash": output_hash,
                               "seconds": seconds})  # fmt: skip
    return Outcome(plan.name, plan.type, "resumed" if resumed else "ran", identity.key, plan.output, output_hash,
                   seconds)  # fmt: skip


def write_resolved(pipeline: Pipeline) -> Path:
    """The pipeline as it will run: repeat blocks unrolled, defaults filled in, where each input comes from."""
    steps: list[dict[str, Any]] = []
    for plan in pipeline.steps:
        inputs: dict[str, str] = {k: str(v) for k, v in plan.inputs.items()}
        inputs.update({r.label: f"output of {r.step} ({r.output})" for r in plan.refs})
        steps.append({"name": plan.name, "type": plan.type, "inputs": inputs, "output": str(plan.output),
                      "settings": settings_dict(plan.settings)})  # fmt: skip
    target = pipeline.workdir / RESOLVED
    header = f"{RESOLVED_HEADER}{pipeline.source}; run with: grape run {pipeline.source}\n"
    body = yaml.safe_dump({"workdir": str(pipeline.workdir), "steps": steps}, sort_keys=False, allow_unicode=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != header + body:  # a no-op re-run touches nothing
        target.write_text(header + body, encoding="utf-8")
    return target


def _log(workdir: Path, outcome: Outcome) -> None:
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "step": outcome.step, "type": outcome.type,
             "status": outcome.status, "key": outcome.key, "seconds": outcome.seconds}  # fmt: skip
    with (workdir / "run-log.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
