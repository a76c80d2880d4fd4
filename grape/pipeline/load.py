"""Read, override, plan and check a pipeline: everything `grape run` does before the first step."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from grape.pipeline.checks import check_pipeline
from grape.pipeline.overrides import apply_overrides
from grape.pipeline.plan import Pipeline, plan_pipeline
from grape.pipeline.spec import read_spec


def load_pipeline(path: str | Path, overrides: Sequence[str] = ()) -> Pipeline:
    """The pipeline at ``path`` with ``overrides`` (``steps.sft.max_steps=5``) applied, planned and checked."""
    spec = read_spec(path)
    apply_overrides(spec, overrides)
    pipeline = plan_pipeline(spec)
    check_pipeline(pipeline)
    return pipeline
