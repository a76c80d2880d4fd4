"""Run untrusted Python and its tests in a sandbox: time, memory and process limits, no network, no host files.

The walls are built by sandbox_launcher.py (modes: namespaces, bwrap, guard; docs/security.md says what
each guarantees). This side picks the strongest mode the machine allows, refuses to run in the
in-process ``guard`` mode unless the user allowed it (``allow_unsafe``), starts the launcher in a new
session, bounds the wait and kills the whole process group afterwards. A pass is proven by the
harness (a nonce after the last test), never read from an exit status.
"""

from __future__ import annotations

import functools
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.errors import GrapeError

_HERE = Path(__file__).parent
MODES = ("auto", "namespaces", "bwrap", "guard")
WALLS = ("namespaces", "bwrap")  # the modes that are a wall; guard is not


MIN_MEMORY_MB = 32  # the interpreter alone takes 10-16 MB of address space (at 8 MB it dies of MemoryError)


@dataclass
class SandboxSettings:
    timeout_s: float = 10.0
    memory_mb: int = 1024  # address space, which is larger than the resident memory
    max_processes: int = 32
    max_file_mb: int = 16
    mode: str = "auto"  # auto: the first wall of `auto_order` that works, else guard if allow_unsafe, else refuse
    allow_unsafe: bool = False  # run in guard mode (no wall) where no wall can be built: --unsafe-sandbox

    def __post_init__(self) -> None:
        if not isinstance(self.timeout_s, (int, float)) or not 0 < self.timeout_s < float("inf"):
            raise GrapeError(f"the sandbox timeout (--sandbox-timeout) must be a number of seconds above 0, "
                             f"not {self.timeout_s!r}")  # fmt: skip
        if not isinstance(self.memory_mb, int) or self.memory_mb < MIN_MEMORY_MB:
            raise GrapeError(f"the sandbox memory (--sandbox-memory-mb) must be a whole number of MB, at least "
                             f"{MIN_MEMORY_MB} (Python itself needs 10-16), not {self.memory_mb!r}")  # fmt: skip


@dataclass
class SandboxResult:
    returncode: int
    stdout: str
    stderr: str
    timed_out: bool
    mode: str  # the isolation that was used: namespaces | bwrap | guard
    proven: bool = False  # the harness's nonce arrived: the tests ran to their end
    seccomp: bool = False  # the seccomp filter was loaded

    @property
    def ok(self) -> bool:
        return self.proven


def run_python(program: str, settings: SandboxSettings | None = None, tests: str = "") -> SandboxResult:
    """Run ``program`` then ``tests`` (Python source) in the sandbox; ``proven`` says the tests completed."""
    settings = settings or SandboxSettings()
    return _run(program, tests, settings, sandbox_mode(settings))


def sandbox_mode(settings: SandboxSettings) -> str:
    """The mode ``settings`` resolve to on this machine; a GrapeError when it would be no wall and
    ``allow_unsafe`` is off, or when the requested wall cannot be built here."""
    if settings.mode not in MODES:
        raise GrapeError(f"unknown sandbox mode '{settings.mode}': use one of {MODES}")
    if settings.mode in WALLS:
        reason = wall_unavailable(settings.mode)
        if reason:
            raise GrapeError(f"sandbox mode '{settings.mode}' is unavailable here: {reason}")
        return settings.mode
    if settings.mode == "auto":
        reasons = {mode: wall_unavailable(mode) for mode in auto_order(os.geteuid() == 0, _bwrap())}
        for mode, reason in reasons.items():
            if reason is None:
                return mode
        why = "; ".join(f"{mode}: {reason}" for mode, reason in reasons.items())
    else:
        why = "the guard mode was asked for"
    if not settings.allow_unsafe:
        raise GrapeError(
            f"no sandbox wall for the code verifier on this machine ({why}). The in-process guard is no wall "
            "against hostile code: pass --unsafe-sandbox (unsafe_sandbox: true) to run it anyway, or allow user "
            "namespaces / install bubblewrap (docs/security.md)"
        )
    _warn_once(f"UNSAFE SANDBOX: the code verifier runs candidates with the in-process guard only ({why}). "
               "Code that means harm can escape it; see docs/security.md.")  # fmt: skip
    return "guard"


def auto_order(root: bool, bwrap: str | None) -> tuple[str, ...]:
    """The walls ``auto`` tries, best first. For a normal user, bubblewrap where it is installed: the separately
    maintained, widely used tool (Flatpak's) builds the same wall as grape's own code. As root, grape's own
    namespaces first (the launcher gives each sandbox a uid of its own before either wall is built)."""
    return ("bwrap", "namespaces") if bwrap and not root else ("namespaces", "bwrap")


def describe(mode: str, settings: SandboxSettings) -> dict[str, Any]:
    """What the verify sidecar records about the sandbox its candidates ran in."""
    return {"mode": mode, "unsafe": mode not in WALLS, "seccomp": seccomp_available(), "timeout_s": settings.timeout_s,
            "memory_mb": settings.memory_mb, "max_processes": settings.max_processes}  # fmt: skip


def summary(sandbox: dict[str, Any]) -> str:
    """One line for the terminal: ``sandbox: bwrap + seccomp, 10 s / 1024 MB / 32 processes per check``."""
    walls = sandbox["mode"] + (" + seccomp" if sandbox["seccomp"] else " (no seccomp filter: libseccomp missing)")
    if sandbox["unsafe"]:
        walls += " (UNSAFE: no wall, an audit hook and resource limits only)"
    limits = f"{sandbox['timeout_s']:g} s / {sandbox['memory_mb']} MB / {sandbox['max_processes']} processes"
    return f"sandbox: {walls}, {limits} per check"


def seccomp_available() -> bool:
    """Whether the launcher will load its seccomp filter (libseccomp is installed)."""
    from grape.verification import sandbox_seccomp

    return sandbox_seccomp.libseccomp() is not None


@functools.cache
def wall_unavailable(mode: str) -> str | None:
    """Why ``mode`` (namespaces or bwrap) cannot run a program here, or None when it can (probed once)."""
    if mode == "bwrap" and _bwrap() is None:
        return "bwrap is not installed"
    result = _run("", "", SandboxSettings(timeout_s=10), mode)
    if result.proven:
        return None
    lines = [line for line in (result.stderr + result.stdout).strip().splitlines() if line.strip()]
    return (lines[-1] if lines else f"exit {result.returncode}")[:300]


def _run(program: str, tests: str, settings: SandboxSettings, mode: str) -> SandboxResult:
    host = Path(tempfile.mkdtemp(prefix="grape-sandbox-"))
    try:
        config = {
            "host_dir": str(host),
            "program": program,
            "tests": tests,
            "mode": mode,
            "timeout_s": settings.timeout_s,
            "memory_mb": settings.memory_mb,
            "max_processes": settings.max_processes,
            "max_file_mb": settings.max_file_mb,
            "python": _base_python(),
            "python_prefix": os.path.realpath(sys.base_prefix),
            "pythons": _interpreters(),
            "bwrap": _bwrap(),
        }
        descriptor = os.open(host / "config.json", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(config, handle)
        return _launch(host, settings)
    finally:
        shutil.rmtree(host, ignore_errors=True)


def _launch(host: Path, settings: SandboxSettings) -> SandboxResult:
    launcher = [sys.executable, "-I", str(_HERE / "sandbox_launcher.py"), str(host / "config.json")]
    # Output goes to files, not pipes: RLIMIT_FSIZE bounds them, and a chatty program cannot fill our memory.
    with open(host / "stdout", "wb") as out, open(host / "stderr", "wb") as err:
        process = subprocess.Popen(launcher, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        try:
            _wait(process, settings.timeout_s + 10)  # the launcher enforces timeout_s; this is a backstop
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
        proven=status.get("proven", False),
        seccomp=status.get("seccomp", False),
    )


def _wait(process: subprocess.Popen, timeout_s: float) -> None:
    """Wait until the process ends or ``timeout_s`` passes. A pidfd wakes us the moment it ends, where
    Popen.wait(timeout) polls with sleeps of up to 50 ms: most of a quick check's time."""
    try:
        handle = os.pidfd_open(process.pid)
    except (AttributeError, OSError):  # no pidfd (Linux < 5.3)
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            pass
        return
    try:
        select.select([handle], [], [], timeout_s)
    finally:
        os.close(handle)


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass  # already gone


def _base_python() -> str:
    """The interpreter itself, not a venv's link to it: the namespaces see its prefix, not the venv."""
    return os.path.realpath(getattr(sys, "_base_executable", "") or sys.executable)


def _interpreters() -> list[str]:
    """Pythons for guard mode, best first (a fresh uid may not reach a Python under /root)."""
    found = [sys.executable, _base_python(), shutil.which("python3") or "", "/usr/bin/python3"]
    return list(dict.fromkeys(p for p in found if p))


def _bwrap() -> str | None:
    return shutil.which("bwrap")


@functools.cache
def _warn_once(message: str) -> None:
    from grape.console import console

    console.print(f"[bold red]{message}[/]", highlight=False)


def _tail(path: Path, limit: int = 4000) -> str:
    with open(path, "rb") as handle:
        handle.seek(max(0, path.stat().st_size - limit))
        return handle.read().decode("utf-8", errors="replace")
