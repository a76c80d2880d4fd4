"""Issue 19 #7: when the machine refuses (the output's folder is a file, the file system is read-only, the
disk is full) or the weights are a pickle with code in it, `grape` says so in one line, without a traceback.

The read-only file system and the full disk are real: a tmpfs mounted read-only, or filled up, in a
mount namespace of the test's own (as root; skipped where the kernel does not allow it). Only the
in-process test of a full disk during the final write simulates the kernel's ENOSPC.
"""

import errno
import json
import os
import shutil
import subprocess
import sys

import pyarrow.parquet as pq
import pytest
import torch

from grape.cli import main
from grape.data.tables import write_rows
from grape.errors import FILE_SYSTEM_REASONS, GrapeError
from grape.scoring.assemble import SCORES_SCHEMA
from grape.scoring.parts import parts_root

ROWS = [
    {"id": f"q{i}", "prompt": f"Count to {i}.", "candidates": [{"text": "1 2 3"}, {"text": "No."}]} for i in range(4)
]


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    return path


def score_args(source, output, model) -> list[str]:
    return ["score", str(source), "-o", str(output), "--model", str(model), "--dtype", "float32", "--device", "cpu"]


def grape_command(source, output, model) -> list[str]:
    return [sys.executable, "-m", "grape.cli", *score_args(source, output, model)]


def one_error_line(err: str) -> str:
    """The error that ended the run: the last line of stderr, which must be the only one that says error."""
    lines = err.strip().splitlines()
    assert "Traceback" not in err and [line for line in lines if "error" in line.lower()] == lines[-1:], err
    return lines[-1]


def test_an_output_folder_that_is_a_file(tmp_path, source, tiny_model_dir, capsys):
    blocker = tmp_path / "results"
    blocker.write_text("not a folder")
    for output in (blocker / "scores.parquet", blocker / "deeper" / "scores.parquet"):
        assert main(score_args(source, output, tiny_model_dir)) == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines() == [f"error: cannot write {output}: {blocker} is a file, not a folder"]
    with pytest.raises(GrapeError, match=f"cannot write {blocker}/x.jsonl: {blocker} is a file, not a folder"):
        write_rows([{"a": 1}], blocker / "x.jsonl")


def test_a_full_disk_at_the_last_write_loses_nothing(tmp_path, source, tiny_model_dir, capsys, monkeypatch):
    """The kernel's ENOSPC, simulated where it surfaces on a full disk (the flush to disk) for the final
    table only: the error names the table, and the parts saved before it make the next run quick."""
    output = tmp_path / "scores.parquet"
    real_fsync = os.fsync

    def fsync_on_a_full_disk(fd: int) -> None:
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(f".{output.name}.") and name.endswith(".tmp"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync_on_a_full_disk)
    assert main(score_args(source, output, tiny_model_dir)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line == f"error: cannot write {output}: {FILE_SYSTEM_REASONS[errno.ENOSPC]}"
    assert "no space left on the device" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "scores.parquet.parts"]  # no half table
    monkeypatch.setattr(os, "fsync", real_fsync)
    assert main(score_args(source, output, tiny_model_dir)) == 0
    assert "Resuming: 4 of 4 instructions already scored" in " ".join(capsys.readouterr().err.split())
    assert [row["status"] for row in pq.read_table(output).to_pylist()] == ["scored"] * 8


def in_a_mount_namespace(mount_options: str, folder, command: list[str], fill: bool = False):
    """Run ``command`` with a fresh tmpfs (``mount_options``) on ``folder``, seen by that command only;
    with ``fill``, the tmpfs is filled to the last byte first."""
    if shutil.which("unshare") is None:
        pytest.skip("no unshare(1) here")
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace here (needs root or user namespaces): {probe.stderr!r}")
    fill_up = 'cat /dev/zero > "$0/fill" 2>/dev/null; ' if fill else ""
    script = f'mount -t tmpfs -o {mount_options} tmpfs "$0" && {fill_up}exec "$@"'
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, str(folder), *command],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_a_read_only_file_system(tmp_path, source, tiny_model_dir):
    folder = tmp_path / "read-only"
    folder.mkdir()
    output = folder / "scores.parquet"
    run = in_a_mount_namespace("ro,size=1m", folder, grape_command(source, output, tiny_model_dir))
    assert run.returncode == 2, run.stderr
    expected = f"error: cannot write {output}: the file system is read-only: write elsewhere"
    assert run.stderr.strip().splitlines() == [expected]


def test_a_full_disk(tmp_path, source, tiny_model_dir):
    folder = tmp_path / "full"
    folder.mkdir()
    output = folder / "scores.parquet"
    run = in_a_mount_namespace("size=64k", folder, grape_command(source, output, tiny_model_dir), fill=True)
    assert run.returncode == 2, run.stderr
    line = one_error_line(run.stderr)
    assert line.startswith(f"error: cannot write {output}") and "no space left on the device" in line, line


class RunsAShellCommand:
    """What a malicious pickle carries: unpickling it would run a command."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_pickle_weights_with_code_are_refused_in_one_line(tmp_path, source, tiny_model_dir, capsys):
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (model / "model.safetensors").unlink()
    marker = tmp_path / "the-pickle-ran"
    torch.save({"model.embed_tokens.weight": RunsAShellCommand(marker)}, model / "pytorch_model.bin")
    assert main(score_args(source, tmp_path / "scores.parquet", model)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith(f"error: refused to load model '{model}': its pickle weights (.bin) hold code, not only")
    assert "posix.system" in line
    assert not marker.exists()
    assert not (tmp_path / "scores.parquet").exists()
    assert not any(parts_root(tmp_path / "scores.parquet").glob("*/part-*"))


def test_a_refusal_where_no_stage_expected_one_is_one_line_too(tmp_path, capsys):
    """The CLI's last resort: an OSError of the file system that a stage let through (here the report's
    own writer, which makes its folder with mkdir) is printed in one line as well."""
    rows = [
        {"id": f"q{i}", "candidate": k, "source": f"s{k}", "n_tokens": 5, "sum_logprob": -1.0 - k,
         "mean_logprob": -0.2 - k / 5, "status": "scored", "row": i + 1, "prompt": "p", "response": "r"}
        for i in range(2) for k in range(2)
    ]  # fmt: skip
    write_rows(rows, tmp_path / "scores.parquet", SCORES_SCHEMA)
    blocker = tmp_path / "reports"
    blocker.write_text("")
    assert main(["report", str(tmp_path / "scores.parquet"), "-o", str(blocker / "report.html")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert line.startswith("error: cannot ") and line.endswith(f"{blocker} is a file, not a folder"), line
