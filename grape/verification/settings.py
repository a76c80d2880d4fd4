"""The settings of `grape verify` (torch-free, so that `grape --help` and pipeline checks stay fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grape.data.layout import Columns


@dataclass
class VerifySettings:
    verifier: Any = "math"  # a registry name (math, number, exact, regex:..., code, python:...) or a callable
    workers: int | None = None  # threads judging candidates; None: one per CPU
    columns: Columns = field(default_factory=Columns)
    layout: str = "auto"
    on_error: str = "fail"
    split: str | None = None
    subset: str | None = None  # a Hub dataset's config name
    revision: str | None = None  # a Hub dataset's branch, tag or commit
    unsafe_sandbox: bool = False  # code verifier without a wall where none can be built (docs/security.md)
