"""How the experiment runners resume: a stage that finished leaves a marker file and is skipped on a re-run,
a grape command runs as a user would type it, and a results file says which runs are already done."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


def once(marker: Path, work, *args: Any, **kwargs: Any) -> None:
    """Run ``work(*args, **kwargs)`` unless ``marker`` says it finished; write the marker when it does."""
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    work(*args, **kwargs)
    marker.write_text(json.dumps({"seconds": round(time.time() - started, 1)}) + "\n")


def grape_command(*argv: Any) -> None:
    """`grape ARGV...` in this process (grape.cli.main); a non-zero exit stops the runner, naming the command."""
    from grape.cli import main

    code = main([str(a) for a in argv])
    if code != 0:
        raise SystemExit(f"grape {' '.join(map(str, argv))} exited with {code}")


def finished(results: Path, *keys: str) -> set[tuple]:
    """The ``keys`` values of every row already in the JSONL ``results`` (none when it does not exist)."""
    if not results.exists():
        return set()
    return {tuple(row[k] for k in keys) for row in map(json.loads, results.read_text().splitlines())}
