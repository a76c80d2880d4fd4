"""experiments/stages.py: the stage scheduler that lets one runner be started once per core: dependencies in
order, a live process's claim skipped, a dead process's claim taken over, two processes sharing the stages."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments"))

from stages import Stage, needed, run_stages  # noqa: E402


def _stage(folder: Path, log: list[str], name: str, after: tuple[str, ...] = ()) -> Stage:
    return Stage(name, folder / f"{name}.done", lambda: log.append(name), after)


def test_stages_run_once_each_in_list_order_as_their_dependencies_finish(tmp_path):
    log: list[str] = []
    stages = [_stage(tmp_path, log, "b", ("a",)), _stage(tmp_path, log, "a"), _stage(tmp_path, log, "c", ("b",))]
    run_stages(stages, tmp_path / "claims", poll_seconds=0.01)
    assert log == ["a", "b", "c"]  # b waits for a although listed first
    run_stages(stages, tmp_path / "claims", poll_seconds=0.01)
    assert log == ["a", "b", "c"]  # finished stages are not run again
    assert not list((tmp_path / "claims").iterdir())  # claims are released


def test_a_dead_process_claim_is_taken_over_and_a_live_one_is_waited_for(tmp_path):
    claims = tmp_path / "claims"
    claims.mkdir()
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (claims / "a.claim").write_text(dead.stdout.strip())  # its process has exited
    log: list[str] = []
    run_stages([_stage(tmp_path, log, "a")], claims, poll_seconds=0.01)
    assert log == ["a"]
    (claims / "b.claim").write_text(str(os.getppid()))  # a live process holds b
    holder = _stage(tmp_path, log, "b")
    started = time.time()
    process = multiprocessing.get_context("fork").Process(
        target=run_stages, args=([holder, _stage(tmp_path, [], "c")], claims, 0.05)
    )
    process.start()
    time.sleep(1.0)
    assert (tmp_path / "c.done").exists() and not (tmp_path / "b.done").exists()  # c ran; b is left to its holder
    assert process.is_alive()  # still waiting for b
    (tmp_path / "b.done").write_text(json.dumps({"seconds": 0}))  # the holder finishes b
    process.join(timeout=10)
    assert process.exitcode == 0 and time.time() - started < 10


def _slow(folder: Path, name: str) -> None:
    with (folder / "ran.log").open("a") as log:
        log.write(f"{name} {os.getpid()}\n")
    time.sleep(0.3)


def test_two_processes_share_the_stages_and_each_runs_once(tmp_path):
    stages = [Stage(n, tmp_path / f"{n}.done", lambda n=n: _slow(tmp_path, n)) for n in "abcd"]
    context = multiprocessing.get_context("fork")
    processes = [context.Process(target=run_stages, args=(stages, tmp_path / "claims", 0.05)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=20)
    ran = [line.split() for line in (tmp_path / "ran.log").read_text().splitlines()]
    assert sorted(name for name, _ in ran) == list("abcd")  # each once
    assert len({pid for _, pid in ran}) == 2  # both processes worked


def test_a_stage_whose_dependents_are_all_done_is_not_needed(tmp_path):
    log: list[str] = []
    train = _stage(tmp_path, log, "train")
    evaluate, further = _stage(tmp_path, log, "eval", ("train",)), _stage(tmp_path, log, "further", ("train",))
    stages = [train, evaluate, further, _stage(tmp_path, log, "eval-further", ("further",))]
    assert [s.name for s in needed(stages)] == ["train", "eval", "further", "eval-further"]
    evaluate.marker.write_text("{}")  # kept from an earlier machine
    assert [s.name for s in needed(stages)] == ["train", "further", "eval-further"]  # train still feeds further
    (tmp_path / "eval-further.done").write_text("{}")
    assert needed(stages) == []  # nothing left needs the training
    run_stages(stages, tmp_path / "claims", poll_seconds=0.01)
    assert log == []


def test_a_stage_whose_work_writes_its_marker_keeps_what_the_work_wrote_and_says_so(tmp_path):
    """The BFCL runner once named an evaluation's metrics.json as its marker, and the runner's marker replaced
    the metrics; now the file stays as the work wrote it and the run stops, naming it."""
    metrics = tmp_path / "metrics.json"
    stage = Stage("eval", metrics, lambda: metrics.write_text('{"accuracy": 0.5}'))
    with pytest.raises(RuntimeError, match="metrics.json"):
        run_stages([stage], tmp_path / "claims", poll_seconds=0.01)
    assert json.loads(metrics.read_text()) == {"accuracy": 0.5}
