"""Issue 19, item 1, as an adversary would try it: each attack is a candidate, and each must fail to get out.

The walls (``namespaces``, ``bwrap``) are attacked in full; each test skips with the reason where the
machine cannot build that wall. The ``guard`` mode is no wall (docs/security.md): the tests show that it
is refused unless allowed, that its audit hook falls to a frame walk, and which of its kernel parts
(seccomp, a fresh uid) still hold after that.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from grape.data.tables import read_sidecar
from grape.errors import GrapeError
from grape.verification import get_verifier
from grape.verification.sandbox import seccomp_available, wall_unavailable
from grape.verification.sandbox_seccomp import libseccomp

REPO = Path(__file__).resolve().parents[2]
WALLS = [
    pytest.param(m, marks=pytest.mark.skipif(bool(wall_unavailable(m)), reason=f"{m}: {wall_unavailable(m)}"))
    for m in ("namespaces", "bwrap")
]
NEEDS_SECCOMP = pytest.mark.skipif(libseccomp() is None, reason="libseccomp is not installed")
# Tests that print what got through: solve() returns 42 only when nothing did.
TESTS = {"tests": "assert solve() == 42, solve()"}
RIGHT_ADD = "def add(a, b):\n    return a + b"
# The attack on the guard: reach the audit hook's globals (up the frames, or through sys.modules)
# and unlock everything.
FRAME_WALK = """
import sys
import threading
frame, spaces = sys._getframe(), [vars(m) for m in list(sys.modules.values())]
while frame is not None:
    spaces.append(frame.f_globals)
    frame = frame.f_back
for g in spaces:
    if "REFUSED" in g:
        g["REFUSED"].clear()
        g["PATH_CHANGES"].clear()
        g["_inside"] = lambda path: True
"""


def _code(mode: str, **limits):
    return get_verifier("code", mode=mode, allow_unsafe=mode == "guard", **limits)


def _attempts(*tries: str) -> str:
    """A candidate that makes each attempt and returns 42 when all of them failed, else what got through."""
    lines = ["def _try(name, action):", "    try:", "        action()", "        return name", "    except Exception:",
             "        return None", "got = [n for n in ("]  # fmt: skip
    lines += [f"    _try({t!r}, lambda: {t})," for t in tries]
    lines += [") if n]", "def solve():", "    return got or 42"]
    return "\n".join(lines)


@pytest.mark.parametrize("mode", WALLS)
def test_a_frame_walk_finds_nothing_to_unlock_and_nothing_gets_out(mode, tmp_path):
    targets = [tmp_path / "escape.txt", Path("/tmp") / f"grape-escape-{uuid.uuid4().hex}.txt"]
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        program = (
            FRAME_WALK
            + "import os, socket\n"
            + _attempts(
                *(f"open({str(t)!r}, 'w').write('pwned')" for t in targets),
                f"socket.create_connection(('127.0.0.1', {port}), timeout=1)",
                "os.mkdir('/escape')",
            )
        )
        verdict = _code(mode, timeout_s=10)(program, TESTS)
        server.settimeout(0.2)
        with pytest.raises(TimeoutError):
            server.accept()
    assert (verdict.correct, verdict.reason) == (True, "tests passed")  # every attempt failed inside
    assert not any(t.exists() for t in targets)


@pytest.mark.parametrize("mode", WALLS)
def test_sqlite_writes_nothing_outside(mode, tmp_path):
    database = tmp_path / "escape.db"
    program = "import sqlite3\n" + _attempts(f"sqlite3.connect({str(database)!r}).execute('create table t (x)')")
    assert _code(mode)(program, TESTS).correct is True
    assert not database.exists()


@pytest.mark.parametrize("mode", [*WALLS, pytest.param("guard", marks=NEEDS_SECCOMP)])
def test_signals_reach_no_host_process(mode):
    victim = subprocess.Popen(["sleep", "30"])
    try:
        program = (
            FRAME_WALK
            + "import os, signal\n"
            + _attempts(
                f"signal.pidfd_send_signal(os.pidfd_open({victim.pid}), signal.SIGSTOP)",
                f"os.kill({victim.pid}, signal.SIGKILL)",
                "os.kill(-1, signal.SIGKILL)",
            )
        )
        verdict = _code(mode)(program, TESTS)
        time.sleep(0.1)
        state = Path(f"/proc/{victim.pid}/stat").read_text().split(") ")[1][0]
        assert victim.poll() is None and state != "T"  # neither killed nor stopped
        assert verdict.correct is True
    finally:
        victim.kill()
        victim.wait()


@pytest.mark.parametrize("mode", WALLS)
def test_host_files_and_the_tests_are_out_of_sight(mode):
    secret_test = f"assert solve() == 42, solve()  # {uuid.uuid4().hex}"
    files = ["/etc/shadow", "/etc/passwd", str(REPO / "README.md"), str(REPO / "../shared/data/README.md"),
             "/proc/self/environ", "main.py", "tests.py", "config.json"]  # fmt: skip
    folders = ["/root", "/home", str(REPO), "/tmp", "/proc"]
    reads = [*(f"open({p!r}).read()" for p in files), *(f"os.listdir({p!r})" for p in folders)]
    program = "import os\n" + _attempts(*reads)
    program += "\nassert os.listdir('.') == [], os.listdir('.')  # nothing of the tests in its directory"
    verdict = _code(mode)(program, {"tests": secret_test})
    assert (verdict.correct, verdict.reason) == (True, "tests passed")


@pytest.mark.parametrize("mode", WALLS)
def test_setuid_binaries_and_mounts_gain_nothing(mode):
    su = shutil.which("su")
    program = (
        "import ctypes, os, subprocess\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.prctl(39, 0, 0, 0, 0) == 1, 'no_new_privs is off'\n"  # PR_GET_NO_NEW_PRIVS
        "assert os.statvfs('/usr/bin').f_flag & os.ST_NOSUID, '/usr/bin is not nosuid'\n"
        + _attempts(
            "(_ for _ in ()).throw(OSError()) if libc.umount2(b'/', 2) else None",  # MNT_DETACH
            "(_ for _ in ()).throw(OSError()) if libc.unshare(0x10020000) else None",  # CLONE_NEWUSER | CLONE_NEWNS
            *(
                [f"subprocess.run([{su!r}, '-c', 'true', 'root'], check=True, timeout=3, stdin=subprocess.DEVNULL)"]
                if su
                else []
            ),
        )  # fmt: skip
    )
    verdict = _code(mode)(program, TESTS)
    assert (verdict.correct, verdict.reason) == (True, "tests passed")


@pytest.mark.parametrize("mode", [*WALLS, pytest.param("guard", marks=NEEDS_SECCOMP)])
def test_no_socket_of_any_kind(mode):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as listener:
        listener.bind(("127.0.0.1", 0))
        port = listener.getsockname()[1]
        program = (
            FRAME_WALK
            + "import socket\n"
            + _attempts(
                f"socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'leak', ('127.0.0.1', {port}))",
                "socket.socket(socket.AF_INET6, socket.SOCK_STREAM)",
                "socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)",
                "socket.socket(socket.AF_PACKET, socket.SOCK_RAW)",
            )
        )
        verdict = _code(mode)(program, TESTS)
        listener.settimeout(0.2)
        with pytest.raises(TimeoutError):
            listener.recv(16)
    assert verdict.correct is True


@pytest.mark.parametrize("mode", [*WALLS, "guard"])
def test_a_process_in_a_session_of_its_own_does_not_outlive_the_check(mode, tmp_path):
    marker = _sleep_marker()
    program = FRAME_WALK + (
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    open('started', 'w').close()\n"
        f"    os.execv('/bin/sleep', ['/bin/sleep', '30', {marker!r}])\n"
        "while not os.path.exists('started'):\n    time.sleep(0.01)\ntime.sleep(0.1)\n"
        "def solve():\n    return 42"
    )
    verdict = _code(mode, timeout_s=5)(program, TESTS)
    assert verdict.correct is True  # the child started, in a session of its own
    time.sleep(0.3)
    assert _with_marker(marker) == []


def _cmdline(process: Path) -> bytes:
    try:
        return (process / "cmdline").read_bytes()
    except OSError:
        return b""


def test_the_guard_is_refused_unless_allowed():
    with pytest.raises(GrapeError, match="--unsafe-sandbox"):
        get_verifier("code", mode="guard")


@NEEDS_SECCOMP
def test_the_guard_falls_to_a_frame_walk_but_its_kernel_parts_hold():
    """What guard mode does not guarantee, shown: after the walk, os.system runs (the hook is gone); what it
    does: no network socket and no signal to a process of its own uid but not its own (seccomp)."""
    program = (
        FRAME_WALK
        + "import os, socket\n"
        + _attempts("socket.socket(socket.AF_INET, socket.SOCK_STREAM)", "os.kill(os.getppid(), 0)")
    )
    program += "\nassert os.system('true') == 0, 'the hook still refuses os.system'"
    assert _code("guard")(program, TESTS).correct is True


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv")
@pytest.mark.skipif(bool(wall_unavailable("namespaces")), reason=f"namespaces: {wall_unavailable('namespaces')}")
def test_grape_verify_without_cap_sys_admin_uses_the_wall(tmp_path):
    """The issue's reproduction: `setpriv --bounding-set=-sys_admin -- grape verify ... --verifier code`."""
    target = tmp_path / "escape.txt"
    candidates = [
        {"text": FRAME_WALK + f"open({str(target)!r}, 'w').write('x')\n" + RIGHT_ADD, "source": "walk"},
        {"text": "import sys\ndef add(a, b):\n    return a - b\nsys.exit(0)", "source": "exit"},
        {"text": RIGHT_ADD, "source": "right"},
    ]  # fmt: skip
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "1", "prompt": "add", "tests": ["assert add(2, 3) == 5"],
                                 "candidates": candidates}) + "\n")  # fmt: skip
    out = tmp_path / "out.jsonl"
    grape = [str(Path(sys.executable).parent / "grape"), "verify", str(items), "-o", str(out), "--verifier", "code"]
    run = subprocess.run(["setpriv", "--bounding-set=-sys_admin", "--", *grape], capture_output=True, text=True,
                         cwd=REPO, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr
    verdicts = {c["source"]: c["correct"] for c in json.loads(out.read_text())["candidates"]}
    assert verdicts == {"walk": False, "exit": False, "right": True}  # walk: the write failed, so did the program
    assert not target.exists()
    sidecar = read_sidecar(out)
    assert sidecar["sandbox"] == {"mode": "namespaces", "unsafe": False, "seccomp": seccomp_available(),
                                  "timeout_s": 10.0, "memory_mb": 1024, "max_processes": 32}  # fmt: skip
    assert run.stderr.count("sandbox: namespaces") == 1  # said once, before the checks


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None or shutil.which("unshare") is None,
                    reason="needs root, setpriv and unshare")  # fmt: skip
def test_without_a_wall_the_verifier_refuses_unless_told(tmp_path):
    """No user namespaces at all (max_user_namespaces = 0 in a namespace of the test's own): `grape verify
    --verifier code` stops with a one-line error, and runs in guard mode only with --unsafe-sandbox,
    which the sidecar records."""
    items = tmp_path / "items.jsonl"
    items.write_text(json.dumps({"id": "1", "prompt": "add", "tests": ["assert add(2, 3) == 5"],
                                 "candidates": [{"text": RIGHT_ADD, "source": "m"}]}) + "\n")  # fmt: skip
    out = tmp_path / "out.jsonl"
    no_userns = ["unshare", "-Ur", "sh", "-c", 'echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"', "sh"]
    grape = [str(Path(sys.executable).parent / "grape"), "verify", str(items), "-o", str(out), "--verifier", "code"]
    refused = subprocess.run([*no_userns, *grape], capture_output=True, text=True, cwd=REPO, timeout=120)
    if "Operation not permitted" in refused.stderr and "max_user_namespaces" in refused.stderr:
        pytest.skip("this kernel does not let a user namespace lower max_user_namespaces")
    assert refused.returncode != 0 and not out.exists()
    assert "no sandbox wall" in refused.stderr and "--unsafe-sandbox" in refused.stderr
    assert "Traceback" not in refused.stderr
    allowed = subprocess.run([*no_userns, *grape, "--unsafe-sandbox"], capture_output=True, text=True, cwd=REPO,
                             timeout=120)  # fmt: skip
    assert allowed.returncode == 0, allowed.stderr
    assert "UNSAFE SANDBOX" in allowed.stderr
    assert {k: read_sidecar(out)["sandbox"][k] for k in ("mode", "unsafe")} == {"mode": "guard", "unsafe": True}
    assert "sandbox: guard" in allowed.stderr and "UNSAFE" in allowed.stderr
    assert json.loads(out.read_text())["candidates"][0]["correct"] is True


NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None or not os.access("/usr/bin/python3", os.X_OK),
                    reason="needs root (to become nobody), setpriv and /usr/bin/python3")  # fmt: skip
def test_as_a_user_without_root_the_namespaces_wall_holds():
    """Run by nobody (stdlib-only sandbox, system Python): the candidate, nobody too, can neither read
    world-readable host files, nor write to the world-writable /tmp, nor signal nobody's other processes."""
    victim = subprocess.Popen([*NOBODY, "sleep", "30"])
    leak = Path("/tmp") / f"grape-nobody-{uuid.uuid4().hex}"
    try:
        time.sleep(0.1)
        program = "import os, signal\n" + _attempts(
            f"open({str(REPO / 'README.md')!r}).read()", "open('/etc/passwd').read()",
            f"open({str(leak)!r}, 'w').write('x')", f"os.kill({victim.pid}, signal.SIGKILL)",
        )  # fmt: skip
        script = (
            f"import json, sys\nsys.path.insert(0, {str(REPO)!r})\n"
            "from grape.verification.sandbox import SandboxSettings, run_python, wall_unavailable\n"
            "why = wall_unavailable('namespaces')\n"
            f"r = None if why else run_python({program!r}, SandboxSettings(mode='namespaces'),\n"
            f"                                tests={TESTS['tests']!r})\n"
            "print(json.dumps({'why': why, 'proven': r and r.proven, 'stderr': r and r.stderr}))"
        )
        run = subprocess.run([*NOBODY, "/usr/bin/python3", "-c", script], capture_output=True, text=True,
                             cwd="/", timeout=120)  # fmt: skip
        outcome = json.loads(run.stdout.strip().splitlines()[-1])
        if outcome["why"]:
            pytest.skip(f"namespaces unavailable to nobody: {outcome['why']}")
        assert outcome["proven"] is True, outcome["stderr"]
        assert victim.poll() is None and not leak.exists()
    finally:
        victim.kill()
        victim.wait()
        leak.unlink(missing_ok=True)


@pytest.mark.parametrize("mode", [*WALLS, "guard"])
def test_the_sandbox_dies_with_its_launcher(mode):
    """Kill the launcher alone (not its process group): the sandbox, its PID 1 and a child of its own go too."""
    marker = _sleep_marker()
    program = FRAME_WALK + (
        f"import os, time\nif os.fork() == 0:\n    os.execv('/bin/sleep', ['/bin/sleep', '30', {marker!r}])\n"
        "time.sleep(30)"
    )
    verifier = _code(mode, timeout_s=20)
    worker = threading.Thread(target=verifier, args=(program, TESTS))
    worker.start()
    deadline = time.monotonic() + 10
    while not _with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _with_marker(marker), "the sandbox did not start its child"
    launchers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and b"sandbox_launcher.py" in _cmdline(p)]
    mine = [int(p.name) for p in launchers if _parent(p) == os.getpid()]
    assert len(mine) == 1
    os.kill(mine[0], signal.SIGKILL)
    worker.join(timeout=10)
    time.sleep(0.3)
    assert _with_marker(marker) == []


def _sleep_marker() -> str:
    """An argument that sleep(1) adds to its interval (a few microseconds) and that no other process has."""
    return f"0.000{uuid.uuid4().int % 10**20:020d}"


def _with_marker(marker: str) -> list[str]:
    return [p.name for p in Path("/proc").iterdir() if p.name.isdigit() and marker.encode() in _cmdline(p)]


def _parent(process: Path) -> int:
    try:
        return int((process / "status").read_text().split("\nPPid:")[1].split()[0])
    except (OSError, IndexError):
        return 0
