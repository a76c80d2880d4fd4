"""SIGKILL a real `grape score` process at random points, again and again, resuming each time: the
final table equals an uninterrupted run's, with no candidate lost and none twice."""

import random
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
from test_resume import synthetic_input

from grape.scoring.parts import parts_root
from grape.scoring.score import SCORES_SCHEMA, ScoreSettings, score

KILLS = 10


def start_grape_score(source, output, model_dir) -> subprocess.Popen:
    command = [
        sys.executable, "-m", "grape.cli", "score", str(source), "-o", str(output), "--model", str(model_dir),
        "--dtype", "float32", "--device", "cpu", "--on-error", "skip", "--part-size", "2",
    ]  # fmt: skip
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def count_parts(output) -> int:
    return len(list(parts_root(output).glob("*/part-*.parquet")))


def wait_for_new_part(process, output, before: int, limit: float = 120) -> None:
    deadline = time.time() + limit
    while count_parts(output) <= before and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)


def test_killed_again_and_again_then_resumed_equals_an_uninterrupted_run(tiny_model_dir, tmp_path):
    source = synthetic_input(tmp_path / "in.jsonl", n=90, seed=1)
    settings = ScoreSettings(model=str(tiny_model_dir), dtype="float32", device="cpu", on_error="skip", part_size=2)
    reference = score(source, tmp_path / "reference.parquet", settings)
    output = tmp_path / "scores.parquet"
    rng, kills, parts_seen = random.Random(6), 0, []
    while kills < KILLS:
        before = count_parts(output)
        process = start_grape_score(source, output, tiny_model_dir)
        try:
            if kills < 2:  # anywhere, most likely while it is still starting up
                time.sleep(rng.uniform(0, 4))
            else:  # while it is scoring: shortly after it saved a part, so that each run gets somewhere
                wait_for_new_part(process, output, before)
                time.sleep(rng.uniform(0, 0.15))
            if process.poll() is not None:
                break  # it finished first: the job is done
            process.send_signal(signal.SIGKILL)
            assert process.wait() == -signal.SIGKILL
            kills += 1
            parts_seen.append(count_parts(output))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
    assert kills == KILLS, f"the job finished after {kills} kills (parts seen: {parts_seen})"
    assert parts_seen[-1] < 45, "every kill came after the last part: make the job longer"
    finish = start_grape_score(source, output, tiny_model_dir)
    assert finish.wait(timeout=300) == 0
    assert count_parts(output) == 45  # 90 instructions, 2 per part: each part once, none lost
    table = pq.read_table(output)
    assert table.to_pylist() == pa.Table.from_pylist(reference, schema=SCORES_SCHEMA).to_pylist()
    keys = list(zip(table.column("id").to_pylist(), table.column("candidate").to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) == len(reference)
