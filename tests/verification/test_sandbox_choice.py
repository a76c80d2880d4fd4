"""Which wall `auto` picks, on this machine and as a normal user (bubblewrap first where it is installed), and
the code verifier's limits from the command line and a config file: --sandbox-timeout, --sandbox-memory-mb.

The choice is tested under the real conditions: the real `bwrap`, the real uid. As root, the normal user is a
real process of uid 65534 running the system's Python (a venv's interpreter under /root is out of its reach).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import grape
from grape.cli import main
from grape.console import console
from grape.data.tables import read_sidecar
from grape.verification.sandbox import SandboxSettings, auto_order, sandbox_mode, wall_unavailable
from grape.verification.verify import verify

REPO = Path(grape.__file__).resolve().parents[1]
NOBODY = 65534
CHOICE = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
from grape.verification.sandbox import SandboxSettings, run_python, sandbox_mode, wall_unavailable
result = run_python("x = 6 * 7", SandboxSettings(), tests="assert x == 42")
print(json.dumps({"uid": os.geteuid(), "mode": sandbox_mode(SandboxSettings()), "bwrap": wall_unavailable("bwrap"),
                  "ran": result.mode, "proven": result.proven}))
"""


def test_the_order_puts_bubblewrap_first_for_a_normal_user_only():
    assert auto_order(root=False, bwrap="/usr/bin/bwrap") == ("bwrap", "namespaces")
    assert auto_order(root=True, bwrap="/usr/bin/bwrap") == ("namespaces", "bwrap")
    assert auto_order(root=False, bwrap=None) == ("namespaces", "bwrap")


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bwrap is not installed on this machine")
def test_a_normal_user_gets_bubblewrap_where_it_is_installed():
    if os.geteuid() != 0:
        chosen = {"uid": os.geteuid(), "mode": sandbox_mode(SandboxSettings()), "bwrap": wall_unavailable("bwrap")}
        chosen.update(ran="bwrap", proven=True)
    else:
        python = shutil.which("python3", path="/usr/bin:/bin")
        if python is None:
            pytest.skip("no system python3 for a normal user to run")

        def as_nobody() -> None:
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)

        done = subprocess.run([python, "-c", CHOICE, str(REPO)], capture_output=True, text=True, cwd="/",
                              preexec_fn=as_nobody, timeout=120)  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"uid {NOBODY} cannot import grape with {python}: {done.stderr.strip().splitlines()[-1:]}")
        chosen = json.loads(done.stdout)
    if chosen["bwrap"] is not None:
        pytest.skip(f"bwrap cannot build its wall for uid {chosen['uid']} here: {chosen['bwrap']}")
    assert chosen["uid"] != 0 and chosen["mode"] == "bwrap"
    assert chosen["ran"] == "bwrap" and chosen["proven"]  # a check really ran inside bubblewrap


@pytest.mark.skipif(os.geteuid() != 0, reason="grape runs as a normal user here")
@pytest.mark.skipif(bool(wall_unavailable("namespaces")), reason=f"namespaces: {wall_unavailable('namespaces')}")
def test_as_root_grapes_own_namespaces_come_first():
    assert sandbox_mode(SandboxSettings()) == "namespaces"


POOL = [
    {"id": "ok", "prompt": "p", "tests": ["assert f() == 1"], "candidates": [{"text": "def f():\n    return 1"}]},
    {"id": "loop", "prompt": "p", "tests": ["assert f() == 1"], "candidates": [{"text": "while True:\n    pass"}]},
    {"id": "big", "prompt": "p", "tests": ["assert f() == 1"],
     "candidates": [{"text": "x = bytearray(200 * 2**20)\ndef f():\n    return 1"}]},
]  # fmt: skip


def write_pool(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_the_limits_come_from_flags_and_config_and_the_mode_is_said_once_and_recorded(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console, "width", 300)
    pool, out = write_pool(tmp_path / "pool.jsonl", POOL), tmp_path / "v.jsonl"
    flags = ["--verifier", "code", "--unsafe-sandbox", "--workers", "2"]  # unsafe only where no wall can be built
    config = tmp_path / "verify.yaml"
    config.write_text("sandbox_timeout: 1.5\nsandbox_memory_mb: 100\n")
    assert main(["verify", str(pool), "-o", str(out), *flags, "--config", str(config)]) == 0
    said = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sandbox: ")]
    meta = read_sidecar(out)
    mode = meta["sandbox"]["mode"]
    assert len(said) == 1 and said[0].startswith(f"sandbox: {mode}") and "1.5 s / 100 MB / 32 processes" in said[0]
    assert meta["sandbox"] | {"mode": None, "seccomp": None, "unsafe": None} == {
        "mode": None,
        "seccomp": None,
        "unsafe": None,
        "timeout_s": 1.5,
        "memory_mb": 100,
        "max_processes": 32,
    }
    assert (meta["settings"]["sandbox_timeout"], meta["settings"]["sandbox_memory_mb"]) == (1.5, 100)
    reasons = [json.loads(line)["candidates"][0]["verify_reason"] for line in out.read_text().splitlines()]
    assert reasons[0] == "tests passed" and reasons[1] == "timeout: still running after 1.5 s (killed)"
    assert reasons[2].startswith("memory limit (100 MB) exceeded")
    # the flags win over the file; the defaults go into the sidecar when nothing is given
    assert main(["verify", str(pool), "-o", str(out), *flags, "--config", str(config), "--sandbox-memory-mb", "400",
                 "--limit", "1"]) == 0  # fmt: skip
    meta = read_sidecar(out)
    assert (meta["sandbox"]["timeout_s"], meta["sandbox"]["memory_mb"]) == (1.5, 400)
    assert meta["limit"] == {"instructions": 1, "of": 3, "left_out": 2} and len(out.read_text().splitlines()) == 1
    rows, _ = verify(pool, None, verifier="code", unsafe_sandbox=True, limit=2)
    assert [r["id"] for r in rows] == ["ok", "loop"]


@pytest.mark.parametrize(("flags", "message"), [
    (["--sandbox-timeout", "0"], "timeout (--sandbox-timeout) must be a number of seconds above 0, not 0.0"),
    (["--sandbox-timeout", "inf"], "must be a number of seconds above 0, not inf"),
    (["--sandbox-memory-mb", "8"], "must be a whole number of MB, at least 32 (Python itself needs 10-16), not 8"),
    (["--limit", "0"], "limit must be at least 1 instruction, not 0"),
])  # fmt: skip
def test_bad_values_are_one_line_errors_before_any_work(tmp_path, capsys, flags, message):
    out = tmp_path / "v.jsonl"
    pool = write_pool(tmp_path / "pool.jsonl", POOL[:1])
    assert main(["verify", str(pool), "-o", str(out), "--verifier", "code", *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and not out.exists()


def test_the_sandbox_settings_go_into_a_pipelines_verify_step():
    """`grape run` builds a verify step's settings with the same reader as --config (no sandbox is started)."""
    from grape.config import settings_from_dict
    from grape.verification.settings import VerifySettings, check

    settings = settings_from_dict(VerifySettings, {"verifier": "code", "sandbox_timeout": "30"}, "step")
    assert settings.sandbox_timeout == 30.0
    with pytest.raises(grape.errors.GrapeError, match="must be a whole number of MB"):
        check(settings_from_dict(VerifySettings, {"sandbox_memory_mb": 4}, "step"))
