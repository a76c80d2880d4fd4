"""How the experiment runners resume: a stage that finished leaves a marker file and is skipped on a re-run,
a grape command runs as a user would type it, and a results file says which runs are already done,
and `run_stages` lets several processes of one runner share its stages."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


def once(marker: Path, work, *args: Any, **kwargs: Any) -> None:
    """Run ``work(*args, **kwargs)`` unless ``marker`` says it finished; write the marker when it does."""
    if marker.exists():
        return
    marker.parent.mkdir(parents=True, exist_ok=True)
    started = time.time()
    work(*args, **kwargs)
    if marker.exists():  # the work wrote it: it is the work's output, not a marker, and stays as written
        raise RuntimeError(f"{marker}: the work wrote its own marker; give the stage a marker file of its own")
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


@dataclass(frozen=True)
class Stage:
    """One step of a runner: ``work()`` after every stage in ``after`` has finished; done when ``marker`` exists."""

    name: str
    marker: Path
    work: Callable[[], Any]
    after: tuple[str, ...] = ()


def run_stages(stages: list[Stage], claims: Path, poll_seconds: float = 30.0) -> None:
    """Run the stages in list order as their dependencies finish, so that the same runner started once per core
    shares them: a process claims a stage with a file in ``claims`` (made atomically, holding its PID), skips a
    stage another live process holds, and waits while every stage left is held or waits on one. A claim whose
    process died (a session's end) is taken over; the stage resumes from what it saved. Only `needed` stages run."""
    by_name = {stage.name: stage for stage in stages}
    claims.mkdir(parents=True, exist_ok=True)
    while True:
        left = needed(stages)
        if not left:
            return
        ready = [s for s in left if all(by_name[d].marker.exists() for d in s.after)]
        stage = next((s for s in ready if _claim(claims / f"{s.name}.claim")), None)
        if stage is None:
            held = ", ".join(s.name for s in left if (claims / f"{s.name}.claim").exists())
            print(f"waiting: {len(left)} stages left, held by other processes: {held or 'none'}", flush=True)
            time.sleep(poll_seconds)
            continue
        print(f"stage {stage.name}", flush=True)
        try:
            once(stage.marker, stage.work)
        finally:
            (claims / f"{stage.name}.claim").unlink(missing_ok=True)


def needed(stages: list[Stage]) -> list[Stage]:
    """The stages left to run: not done, and either an end in themselves (nothing depends on them) or needed by a
    stage that is itself needed. A stage whose every dependent is done is not run again (say a training whose
    evaluation was kept from an earlier machine: its model was only there to be evaluated)."""
    dependents: dict[str, list[Stage]] = {stage.name: [] for stage in stages}
    for stage in stages:
        for name in stage.after:
            dependents[name].append(stage)
    memo: dict[str, bool] = {}

    def need(stage: Stage) -> bool:
        if stage.name not in memo:
            below = dependents[stage.name]
            memo[stage.name] = not stage.marker.exists() and (not below or any(need(d) for d in below))
        return memo[stage.name]

    return [stage for stage in stages if need(stage)]


def _claim(path: Path) -> bool:
    """Take ``path`` for this process unless a live process holds it."""
    try:
        holder = int(path.read_text() or 0)
    except (FileNotFoundError, ValueError):
        holder = None
    if holder is not None:
        try:
            os.kill(holder, 0)
            return False  # held by a live process
        except ProcessLookupError:
            path.unlink(missing_ok=True)  # its process died
    try:
        descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        return False
    with os.fdopen(descriptor, "w") as handle:
        handle.write(str(os.getpid()))
    return True
