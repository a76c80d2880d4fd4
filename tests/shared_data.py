"""The shared public data beside the project (../shared/data), never copied into it.

Import `shared_file` from here (not from conftest: several conftest.py files shadow each other)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(relative: str) -> Path:
    """A file of ../shared/data, or a skip naming what is missing."""
    path = SHARED_DATA / relative
    if not path.is_file():
        pytest.skip(f"{path} is absent (the shared public data sits beside the project, not in it)")
    return path
