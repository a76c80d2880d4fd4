"""The `code` verifier's sandbox: hostile programs end as correct=false with a reason, and harm nothing.

Every mode is exercised where the machine has it: ``namespaces`` (a user namespace with mount/net/PID
namespaces and a root of its own), ``bwrap`` (the same wall built by bubblewrap) and ``guard`` (an audit
hook, allowed only with ``allow_unsafe``). Attacks on the walls are in test_sandbox_attacks.py.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from grape.verification import get_verifier
from grape.verification.sandbox import wall_unavailable
from grape.verification.sandbox_launcher import SANDBOX_UIDS

TESTS = {"tests": ["assert solve() == 42"]}
MODES = [
    *(pytest.param(m, marks=pytest.mark.skipif(bool(wall_unavailable(m)), reason=f"{m}: {wall_unavailable(m)}"))
      for m in ("namespaces", "bwrap")),
    "guard",
]  # fmt: skip


def _code(mode: str, **limits):
    return get_verifier("code", mode=mode, allow_unsafe=mode == "guard", **limits)


def _sandbox_processes() -> list[str]:
    """Processes left by this test's sandboxes: run by a sandbox user, or running the launcher or the harness,
    and either still below this test process or orphaned (parent 1). Sandboxes that other test runs on the
    machine have under way, still below their own launchers, are not ours to count."""
    parents, found = {}, {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(status.split("\nPPid:")[1].split()[0])
        uid = int(status.split("\nUid:")[1].split()[0])
        if uid >= SANDBOX_UIDS or "sandbox_launcher.py" in cmdline or "sandbox_harness.py" in cmdline:
            found[pid] = f"{pid}: {cmdline[:80]}"
    return [line for pid, line in found.items() if parents.get(pid) == 1 or _below(pid, os.getpid(), parents)]


def _below(pid: int, ancestor: int, parents: dict[int, int]) -> bool:
    while pid > 1:
        pid = parents.get(pid, 0)
        if pid == ancestor:
            return True
    return False


@pytest.mark.parametrize("mode", MODES)
def test_a_correct_program_passes_and_a_wrong_one_fails(mode):
    code = _code(mode)
    right = code("```python\ndef solve():\n    return 6 * 7\n```", TESTS)
    wrong = code("def solve():\n    return 41", TESTS)
    assert (right.correct, right.reason) == (True, "tests passed")
    assert wrong.correct is False and "AssertionError" in wrong.reason


@pytest.mark.parametrize("mode", MODES)
def test_infinite_loop_is_killed_at_the_timeout(mode):
    started = time.monotonic()
    verdict = _code(mode, timeout_s=1.0)("def solve():\n    while True:\n        pass", TESTS)
    assert verdict.correct is False and verdict.reason.startswith("timeout")
    assert time.monotonic() - started < 8
    assert _sandbox_processes() == []


@pytest.mark.parametrize("mode", MODES)
def test_memory_bomb_hits_the_memory_limit(mode):
    bomb = "def solve():\n    hoard = []\n    while True:\n        hoard.append(bytearray(50_000_000))"
    verdict = _code(mode, memory_mb=256, timeout_s=10)(bomb, TESTS)
    assert verdict.correct is False and verdict.reason.startswith("memory limit (256 MB) exceeded")


@pytest.mark.parametrize("mode", MODES)
def test_fork_bomb_is_contained_and_leaves_no_process(mode):
    bomb = "import os\ndef solve():\n    while True:\n        os.fork()\nsolve()"
    verdict = _code(mode, timeout_s=3)(bomb, TESTS)
    assert verdict.correct is False
    assert "Resource temporarily unavailable" in verdict.reason or "os.fork is not allowed" in verdict.reason
    time.sleep(0.2)
    assert _sandbox_processes() == []


@pytest.mark.parametrize("mode", MODES)
def test_network_call_fails_and_reaches_nobody(mode):
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        program = (
            "import socket\ndef solve():\n"
            f"    socket.create_connection(('127.0.0.1', {port}), timeout=2).sendall(b'leak')\n    return 42"
        )
        verdict = _code(mode, timeout_s=5)(program, TESTS)
        server.settimeout(0.3)
        with pytest.raises(TimeoutError):
            server.accept()  # nothing ever connected
    assert verdict.correct is False
    assert any(why in verdict.reason for why in ("Network is unreachable", "Operation not permitted", "is not allowed"))


@pytest.mark.parametrize("mode", MODES)
def test_file_write_outside_its_directory_fails_and_writes_nothing(mode, tmp_path):
    targets = [tmp_path / "escape.txt", Path("/tmp") / f"grape-escape-{uuid.uuid4().hex}.txt"]
    program = "def solve():\n" + "".join(f"    open({str(t)!r}, 'w').write('pwned')\n" for t in targets)
    program += "    return 42"
    verdict = _code(mode)(program, TESTS)
    assert verdict.correct is False
    assert any(word in verdict.reason for word in ("Permission denied", "No such file", "is not allowed"))
    assert not any(t.exists() for t in targets)


@pytest.mark.parametrize("mode", MODES)
def test_writing_inside_its_own_directory_is_allowed(mode):
    program = "def solve():\n    open('notes.txt', 'w').write('42')\n    return int(open('notes.txt').read())"
    assert _code(mode)(program, TESTS).correct is True


def test_items_in_mbpp_and_humaneval_shapes():
    code = get_verifier("code")
    mbpp = {"test_setup_code": "import math", "test_list": ["assert area(1) == math.pi"]}
    humaneval = {"test": "def check(candidate):\n    assert candidate(2) == 4", "entry_point": "double"}
    assert code("import math\ndef area(r):\n    return math.pi * r * r", mbpp).correct is True
    assert code("def double(x):\n    return x * 2", humaneval).correct is True
    assert code("def double(x):\n    return x", {}).correct is None


def test_no_process_group_survives(tmp_path):
    """A child that starts its own session is still killed: the PID namespace (or the guard) holds it."""
    program = "import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)\ndef solve():\n    return 42"
    get_verifier("code", timeout_s=3)(program, TESTS)
    time.sleep(0.2)
    assert _sandbox_processes() == []
