"""The settings of `grape verify` (torch-free, so that `grape --help` and pipeline checks stay fast)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grape.data.layout import Columns
from grape.errors import GrapeError


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
    sandbox_timeout: float | None = None  # code verifier: wall seconds per check; None: the sandbox's 10
    sandbox_memory_mb: int | None = None  # code verifier: address space per check; None: the sandbox's 1024
    limit: int | None = None  # verify only the first N instructions (a trial run); None: all


def sandbox_options(settings: VerifySettings) -> dict[str, Any]:
    """The `code` verifier's sandbox options these settings ask for (`SandboxSettings` fields)."""
    options = {"timeout_s": settings.sandbox_timeout, "memory_mb": settings.sandbox_memory_mb,
               "allow_unsafe": settings.unsafe_sandbox or None}  # fmt: skip
    return {name: value for name, value in options.items() if value is not None}


def check(settings: VerifySettings) -> None:
    """Refuse, in one line, settings the stage cannot run with (`grape run` checks every step before the first).
    The sandbox's limits are checked whatever the verifier (other verifiers ignore them: a pipeline's
    ``defaults`` may set them for several verify steps)."""
    if settings.limit is not None and settings.limit < 1:
        raise GrapeError(f"limit must be at least 1 instruction, not {settings.limit}")
    from grape.verification.sandbox import SandboxSettings  # stdlib only: checks the limits' values

    SandboxSettings(**sandbox_options(settings))
