"""Run untrusted Python in a sandboxed subprocess: its own directory, time and memory limits, no network.

The isolation itself is in sandbox_launcher.py (namespaces as root, an audit hook elsewhere); this
side starts it in a new session, bounds the wait, and kills the whole process group afterwards.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grape.errors import GrapeError

_HERE = Path(__file__).parent
MODES = ("auto", "namespaces", "guard")


@dataclass
class SandboxSettings:
    timeout_s: float = 10.0
    memory_mb: int = 1024  # address space, which is larger than the resident memory
    max_processes: int = 32
    max_file_mb: int = 16
    mode: str = "auto"  # auto: namespaces where possible (root), else guard


@dataclass
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    mode: str  # the isolation that was used: namespaces | guard

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


def run_python(program: str, settings: SandboxSettings | None = None) -> SandboxResult:
    """Run ``program`` (Python source) in the sandbox and return its exit status and output (tails)."""
    settings = settings or SandboxSettings()
    if settings.mode not in MODES:
        raise GrapeError(f"unknown sandbox mode '{settings.mode}': use one of {MODES}")
    host = Path(tempfile.mkdtemp(prefix="grape-sandbox-"))
    try:
        (host / "main.py").write_text(program, encoding="utf-8")
        shutil.copy(_HERE / "sandbox_guard.py", host / "sandbox_guard.py")
        config = {
            "host_dir": str(host),
            "files": ["main.py", "sandbox_guard.py"],
            "mode": settings.mode,
            "timeout_s": settings.timeout_s,
            "memory_mb": settings.memory_mb,
            "max_processes": settings.max_processes,
            "max_file_mb": settings.max_file_mb,
            "pythons": _interpreters(),
        }
        (host / "config.json").write_text(json.dumps(config))
        return _launch(host, settings)
    finally:
        shutil.rmtree(host, ignore_errors=True)


def _launch(host: Path, settings: SandboxSettings) -> SandboxResult:
    launcher = [sys.executable, "-I", str(_HERE / "sandbox_launcher.py"), str(host / "config.json")]
    # Output goes to files, not pipes: RLIMIT_FSIZE bounds them, and a chatty program cannot fill our memory.
    with open(host / "stdout", "wb") as out, open(host / "stderr", "wb") as err:
        process = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        try:
            process.wait(timeout=settings.timeout_s + 10)  # the launcher enforces timeout_s; this is a backstop
        except subprocess.TimeoutExpired:
            pass
        finally:
            _kill_group(process.pid)
            process.wait()
    status = json.loads((host / "status.json").read_text() or "{}") if (host / "status.json").is_file() else {}
    return SandboxResult(
        returncode=status.get("returncode", process.returncode),
        stdout=_tail(host / "stdout"),
        stderr=_tail(host / "stderr"),
        timed_out=status.get("timed_out", True),
        mode=status.get("mode", "unknown"),
    )


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _interpreters() -> list[str]:
    """Pythons to run the program with, best first (the sandbox user may not reach a venv under /root)."""
    found = [sys.executable, getattr(sys, "_base_executable", ""), shutil.which("python3") or "", "/usr/bin/python3"]
    return list(dict.fromkeys(p for p in found if p))


def _tail(path: Path, limit: int = 4000) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - limit))
        return handle.read().decode("utf-8", errors="replace")
