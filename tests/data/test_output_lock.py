"""Issue 19 #6: two runs on one output. The second stops with one line naming the first's PID; writes
go through temporary files of their own, so concurrent writers and readers never meet a half file."""

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from grape.data.output_lock import OutputLock, lock_path
from grape.data.tables import read_table_rows
from grape.errors import GrapeError
from grape.scoring.parts import parts_root

HOLD = """
import sys
from grape.data.output_lock import OutputLock
lock = OutputLock(sys.argv[1])
print("held", flush=True)
sys.stdin.read()  # until the test closes our stdin
lock.release()
"""


def hold_in_another_process(output) -> subprocess.Popen:
    command = [sys.executable, "-c", HOLD, str(output)]
    holder = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    return holder


def grape_score(source, output, model_dir) -> list[str]:
    return [
        sys.executable, "-m", "grape.cli", "score", str(source), "-o", str(output), "--model", str(model_dir),
        "--dtype", "float32", "--device", "cpu", "--on-error", "skip", "--part-size", "2",
    ]  # fmt: skip


@pytest.fixture
def source(tmp_path):
    """30 instructions with 1 to 3 candidates each: a few seconds of work for the tiny model."""
    words = ["the", "a", "grape", "vine", "red", "green", "sweet", "sour", "answer", "is", "seven", "because"]
    rows = []
    for i in range(30):
        candidates = [{"text": " ".join(words[k:])} for k in range(1 + i % 3)]
        rows.append({"id": f"q{i}", "prompt": " ".join(words[i % 7 :]), "candidates": candidates})
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def test_a_run_on_a_held_output_stops_in_one_line_naming_the_holder(source, tmp_path, tiny_model_dir):
    output = tmp_path / "scores.parquet"
    holder = hold_in_another_process(output)
    try:
        second = subprocess.run(
            grape_score(source, output, tiny_model_dir), capture_output=True, text=True, timeout=300
        )
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert second.returncode == 2, second.stderr
    assert second.stderr.strip().splitlines() == [
        f"error: {output} is in use by PID {holder.pid} (another grape run is writing it): wait for that run to "
        "finish, or write to another output"
    ]
    assert not output.exists() and not parts_root(output).exists()  # it touched nothing of the holder's
    assert not lock_path(output).exists()  # the holder removed its lock file as it let go
    with OutputLock(output) as lock:  # and the output is free again
        assert lock.path.read_text() == f"{os.getpid()}\n"


def test_two_runs_started_together_never_crash(source, tmp_path, tiny_model_dir):
    """Before the lock, 1 in 10 such pairs died with FileNotFoundError on the shared `.partial` file."""
    output = tmp_path / "scores.parquet"
    command = grape_score(source, output, tiny_model_dir)
    runs = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    results = [(run.pid, *run.communicate(timeout=300)) for run in runs]
    codes = [run.returncode for run in runs]
    assert 0 in codes, results
    for (_, _, err), code, (other, _, _) in zip(results, codes, reversed(results), strict=True):
        assert "Traceback" not in err
        if code != 0:
            # the loser names the winner's PID, or (when the winner has the lock but had not written its PID
            # within a second, as on a loaded CI machine) says it is starting up
            assert code == 2, err
            assert f"is in use by PID {other} " in err or "is in use by another process (starting up) " in err, err
    rows = pq.read_table(output).to_pylist()
    assert len(rows) == len({(r["id"], r["candidate"]) for r in rows}) == 60  # every candidate once
    assert {r["status"] for r in rows} == {"scored"}


def test_a_killed_holder_leaves_no_lock_behind(tmp_path):
    output = tmp_path / "out.jsonl"
    holder = hold_in_another_process(output)
    with pytest.raises(GrapeError, match=f"in use by PID {holder.pid} "):
        OutputLock(output)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)
    assert lock_path(output).exists()  # killed before it could remove it: the kernel released the lock anyway
    OutputLock(output).release()


WRITE_AGAIN_AND_AGAIN = """
import sys
from grape.data.tables import write_rows
name, path = sys.argv[1], sys.argv[2]
for turn in range(40):
    write_rows([{"writer": name, "turn": turn, "i": i, "text": "x" * (i * 37 % 500)} for i in range(200)], path)
"""


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_concurrent_writers_and_a_reader_never_meet_a_half_file(tmp_path, suffix):
    """Before: 23 of 120 concurrent writes raised FileNotFoundError and 7 of 8,372 reads failed."""
    path = tmp_path / f"table{suffix}"
    commands = [[sys.executable, "-c", WRITE_AGAIN_AND_AGAIN, f"w{k}", str(path)] for k in range(4)]
    writers = [subprocess.Popen(command, stderr=subprocess.PIPE, text=True) for command in commands]
    reads, deadline = 0, time.time() + 120
    while any(w.poll() is None for w in writers) and time.time() < deadline:
        if path.exists():
            rows = read_table_rows(path)
            assert len(rows) == 200 and len({(r["writer"], r["turn"]) for r in rows}) == 1  # one whole write
            reads += 1
    errors = [w.communicate(timeout=60)[1] for w in writers]
    assert [w.returncode for w in writers] == [0] * 4, errors
    assert reads > 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary file left behind


def test_the_next_run_removes_what_a_run_killed_mid_write_left(source, tmp_path, tiny_model_dir):
    from grape.scoring.score import ScoreSettings, score

    output = tmp_path / "scores.jsonl"
    leftovers = [tmp_path / ".scores.jsonl.4242-0badf00d.tmp", tmp_path / ".scores.jsonl.meta.json.4242-0badf00d.tmp"]
    for leftover in leftovers:
        leftover.write_text('{"half": ')
    unrelated = tmp_path / ".other.jsonl.4242-0badf00d.tmp"  # another output's: not this run's to remove
    unrelated.write_text("")
    score(source, output, ScoreSettings(model=str(tiny_model_dir), dtype="float32", device="cpu", part_size=10))
    assert not any(leftover.exists() for leftover in leftovers)
    assert unrelated.exists() and len(read_table_rows(output)) == 60
