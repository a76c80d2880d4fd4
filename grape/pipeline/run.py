"""`grape run`: run the stages of a pipeline in order, each only when its key (settings + inputs) changed.

Beside the outputs: ``pipeline.resolved.yaml`` (every stage's settings with defaults filled in, and its
inputs) and ``run-log.jsonl`` (one line per stage and run: cached, ran or resumed, and how long).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from grape.console import console
from grape.errors import GrapeError
from grape.models.fingerprint import model_fingerprint
from grape.pipeline import cache
from grape.pipeline.spec import Pipeline, StagePlan, parse_pipeline
from grape.pipeline.stages import STAGES
from grape.training.config import settings_dict


@dataclass
class Outcome:
    stage: str
    status: str  # cached | ran | resumed
    key: str
    output: Path
    output_hash: str
    seconds: float


def run_pipeline(path: str | Path, force: tuple[str, ...] = ()) -> list[Outcome]:
    """Run (or reuse) every stage of the pipeline at ``path``; ``force`` names stages to redo regardless."""
    pipeline = parse_pipeline(path)
    unknown = sorted(set(force) - {p.name for p in pipeline.stages})
    if unknown:
        raise GrapeError(f"--force {', '.join(unknown)}: not a stage of {path}")
    pipeline.workdir.mkdir(parents=True, exist_ok=True)
    write_resolved(pipeline)
    outcomes: dict[str, Outcome] = {}
    for plan in pipeline.stages:
        outcomes[plan.name] = _run_stage(plan, outcomes, plan.name in force)
        _log(pipeline.workdir, outcomes[plan.name])
    return list(outcomes.values())


def _run_stage(plan: StagePlan, done: dict[str, Outcome], force: bool) -> Outcome:
    inputs, fingerprints = _inputs(plan, done)
    settings = settings_dict(plan.settings)
    if isinstance(settings.get("model"), str):  # a local model directory may change under the same path
        fingerprints["settings.model"] = model_fingerprint(settings["model"])
    key = cache.stage_key(plan.name, settings, fingerprints)
    if not force and cache.is_cached(plan.folder, key, plan.output):
        state = cache.finished_state(plan.folder) or {}
        console.print(f"[dim]• {plan.name}: cached[/]", highlight=False)
        return Outcome(plan.name, "cached", key, plan.output, state["output_hash"], 0.0)
    resumed = cache.begin(plan.folder, key)
    console.rule(f"{plan.name}{' (resuming)' if resumed else ''}", align="left")
    started = time.time()
    STAGES[plan.name].run(plan.settings, inputs, plan.output)
    seconds = round(time.time() - started, 2)
    output_hash = cache.content_hash(plan.output)
    cache.finish(plan.folder, {"stage": plan.name, "key": key, "settings": settings, "inputs": fingerprints,
                               "output": plan.output.name, "output_hash": output_hash, "seconds": seconds})  # fmt: skip
    return Outcome(plan.name, "resumed" if resumed else "ran", key, plan.output, output_hash, seconds)


def _inputs(plan: StagePlan, done: dict[str, Outcome]) -> tuple[dict[str, Path], dict[str, str]]:
    """Paths for the stage, and their fingerprints: content hashes (an earlier stage's, as it recorded it)."""
    inputs, fingerprints = {}, {}
    for name, path in plan.inputs.items():
        if not path.exists():
            raise GrapeError(f"stages.{plan.name}.{name}: {path} does not exist")
        inputs[name], fingerprints[name] = path, cache.content_hash(path)
    for name, stage in plan.from_stages.items():
        inputs[name], fingerprints[name] = done[stage].output, done[stage].output_hash
    return inputs, fingerprints


def write_resolved(pipeline: Pipeline) -> Path:
    """The pipeline as it will run: defaults filled in, paths resolved, where each input comes from."""
    stages: dict[str, Any] = {}
    for plan in pipeline.stages:
        inputs = {k: str(v) for k, v in plan.inputs.items()}
        inputs.update({k: f"output of {s} ({plan.folder.parent / s})" for k, s in plan.from_stages.items()})
        stages[plan.name] = {"inputs": inputs, "output": str(plan.output), "settings": settings_dict(plan.settings)}
    target = pipeline.workdir / "pipeline.resolved.yaml"
    header = f"# resolved from {pipeline.source}; run with: grape run {pipeline.source}\n"
    body = yaml.safe_dump({"workdir": str(pipeline.workdir), "stages": stages}, sort_keys=False, allow_unicode=True)
    if not target.is_file() or target.read_text(encoding="utf-8") != header + body:  # a no-op re-run touches nothing
        target.write_text(header + body, encoding="utf-8")
    return target


def _log(workdir: Path, outcome: Outcome) -> None:
    entry = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "stage": outcome.stage, "status": outcome.status,
             "key": outcome.key, "seconds": outcome.seconds}  # fmt: skip
    with (workdir / "run-log.jsonl").open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(entry) + "\n")
