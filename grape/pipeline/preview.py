"""`grape run --dry-run`: each step, its type, where its inputs come from, and whether it is cached or
would run, and why, without running anything; and how long the step's last finished run took (its
``stage.json``), the one measured time there is for a step that would run again.

A step that reads the output of a step that would run cannot know its key yet: unless it is new, it
runs only if that output comes out different (a changed setting that leaves an output as it was stops
there), and is shown as "depends".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from grape.pipeline import cache
from grape.pipeline.keys import reason_to_run, step_identity
from grape.pipeline.load import load_pipeline
from grape.pipeline.plan import StepPlan
from grape.pipeline.run import forced_steps


@dataclass
class Preview:
    step: str
    type: str
    inputs: list[str]  # "input: data.jsonl", "model ← sft"
    status: str  # cached | runs | depends
    reason: str  # why it runs ("settings changed: max_steps"), or what it waits on
    last_seconds: float | None = None  # how long its last finished run in this workdir took (any settings)


def preview_pipeline(path: str | Path, force: Sequence[str] = (), overrides: Sequence[str] = ()) -> list[Preview]:
    """What `run_pipeline(path, force, overrides)` would do, step by step; nothing is written."""
    pipeline = load_pipeline(path, overrides)
    forced = forced_steps(pipeline, force)
    hashes: dict[str, str | None] = {}  # None: that step would run, so its output is not known yet
    previews = []
    for plan in pipeline.steps:
        waits = sorted({r.step for r in plan.refs if hashes[r.step] is None})
        if plan.name in forced:
            status, reason = "runs", "forced"
        elif cache.marker(plan.folder) is None:  # never started here
            status, reason = "runs", "new"
        elif waits:
            status, reason = "depends", f"runs if the output of {', '.join(waits)} changes"
        else:
            problem = reason_to_run(plan, step_identity(plan, hashes))  # type: ignore[arg-type]  (no None here)
            status, reason = ("cached", "") if problem is None else ("runs", problem)
        finished = cache.finished_state(plan.folder)
        state = finished if status == "cached" else None
        hashes[plan.name] = state["output_hash"] if state else None
        last = finished.get("seconds") if finished else None
        previews.append(Preview(plan.name, plan.type, _inputs(plan), status, reason, last))
    return previews


def _inputs(plan: StepPlan) -> list[str]:
    linked = {r.label: r.step for r in plan.refs}
    shown = [f"{key}: {path}" for key, path in plan.inputs.items() if key not in linked]
    return shown + [f"{label} ← {step}" for label, step in sorted(linked.items())]
