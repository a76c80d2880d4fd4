"""Scoring on Ray (a local cluster of 2 CPU workers): the same table as the single-process scorer, row for
row; the same parts, so either one resumes the other; and a worker killed mid-job costs nothing."""

import logging
import os
import signal
import subprocess
import sys
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_resume import synthetic_input

from grape.data.tables import read_sidecar
from grape.scoring.parts import parts_root
from grape.scoring.score import SCORES_SCHEMA, ScoreSettings, score

ray = pytest.importorskip("ray")

from grape.scoring.distributed import RaySettings, score_on_ray  # noqa: E402


@pytest.fixture(scope="module")
def ray_address():
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.ERROR)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory):
    """The input, the settings, and the single-process scorer's table for them."""
    folder = tmp_path_factory.mktemp("reference")
    source = synthetic_input(folder / "in.jsonl", n=30, seed=2)
    settings = ScoreSettings(model=str(tiny_model_dir), dtype="float32", device="cpu", on_error="skip", part_size=2)
    return source, settings, score(source, folder / "local.parquet", settings), folder / "local.parquet"


def assert_same_table(rows, expected):
    """Row for row: every field equal, scores to rounding (the workers' thread count may differ)."""
    floats = ("sum_logprob", "mean_logprob")
    strip = lambda r: {k: v for k, v in r.items() if k not in floats}  # noqa: E731
    assert [strip(r) for r in rows] == [strip(r) for r in expected]
    for row, want in zip(rows, expected, strict=True):
        if want.get("mean_logprob") is None:
            assert row.get("mean_logprob") is None
        else:
            assert abs(row["mean_logprob"] - want["mean_logprob"]) <= 1e-6


def parts_of(output):
    return sorted(parts_root(output).glob("*/part-*.parquet"))


def test_ray_writes_the_single_process_table_row_for_row(ray_address, reference, tmp_path):
    source, settings, local, local_output = reference
    output = tmp_path / "ray.parquet"
    rows = score_on_ray(source, output, settings, RaySettings(workers=2))
    assert_same_table(rows, local)  # same chunks, same batches: the same arithmetic
    assert_same_table(pq.read_table(output).to_pylist(), pq.read_table(local_output).to_pylist())
    assert [p.relative_to(parts_root(output)) for p in parts_of(output)] == [
        p.relative_to(parts_root(local_output)) for p in parts_of(local_output)
    ]  # same settings key, same part names
    meta = read_sidecar(output)
    # two replicas; on a loaded machine one of them may start late and find no work left
    assert meta["ray"]["workers"] == 2 and 1 <= len(meta["ray"]["per_worker"]) <= 2
    assert sum(w["candidates"] for w in meta["ray"]["per_worker"].values()) == sum(
        r["status"] != "skipped:empty_response" for r in local
    )


def test_ray_resumes_a_single_process_run(ray_address, reference, tmp_path):
    source, settings, local, local_output = reference
    output = tmp_path / "mixed.parquet"
    parts = parts_of(local_output)
    for part in parts[::3]:  # the single-process run got this far before it was stopped
        target = parts_root(output) / part.relative_to(parts_root(local_output))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(part.read_bytes())
    rows = score_on_ray(source, output, settings, RaySettings(workers=2))
    assert_same_table(rows, local)
    assert read_sidecar(output)["parts"]["reused"] == 2 * len(parts[::3])
    assert len(parts_of(output)) == len(parts)


def test_a_worker_killed_mid_job_is_replaced_and_nothing_is_lost(ray_address, reference, tiny_model_dir, tmp_path):
    source, _, local, _ = reference
    output = tmp_path / "killed.parquet"
    command = [
        sys.executable, "-m", "grape.cli", "score", str(source), "-o", str(output), "--model", str(tiny_model_dir),
        "--dtype", "float32", "--on-error", "skip", "--part-size", "2",
        "--ray", "--ray-address", ray_address, "--workers", "2",
    ]  # fmt: skip
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 600  # Ray's start and the first part take minutes on a loaded 2-core machine
        while not parts_of(output) and job.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert job.poll() is None, "the job ended before it could be interrupted"
        assert parts_of(output), "no part was saved within 10 minutes"
        # The worker that scored the first part is at work on its next chunk: kill it by its process id.
        worker = pq.read_table(parts_of(output)[0], columns=["worker"]).column("worker")[0].as_py()
        pid = int(worker.rsplit(":", 1)[1])
        done_at_kill = len(parts_of(output))
        os.kill(pid, signal.SIGKILL)
        _, errors = job.communicate(timeout=300)
    finally:
        if job.poll() is None:
            job.kill()
            job.wait()
    assert job.returncode == 0, errors[-2000:]
    assert done_at_kill < 15
    assert len(parts_of(output)) == 15  # 30 instructions, 2 per part, each saved once
    table = pq.read_table(output).to_pylist()
    assert_same_table(table, pa.Table.from_pylist(local, schema=SCORES_SCHEMA).to_pylist())
    workers = read_sidecar(output)["ray"]["per_worker"]
    assert worker in workers and len(workers) >= 2
