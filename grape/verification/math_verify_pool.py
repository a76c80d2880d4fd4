"""Worker processes for math-verify checks, each check bounded in wall time. Thread-safe, fork-aware.

Why processes: a sympy comparison can run for minutes (``9^{9^{9^{9}}}``), and math-verify's own timeouts
use SIGALRM, which works only on a main thread (`grape verify` checks from a thread pool). A worker that
runs over is killed and replaced, and the check is reported as timed out. Workers are reused across checks
(starting one costs ~0.3 s of imports); there are as many as there are checks in flight at once.

Why plain subprocesses with a JSON-lines pipe and not multiprocessing: nothing is forked from a process that
may hold threads and locks (torch, Ray, pytest), nothing re-imports the caller's ``__main__``, and a worker
sees its parent go (end of stdin, or a watchdog on its parent id) without any cooperation from it.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from grape.errors import GrapeError

_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])  # the folder that holds `grape/`
STARTUP_TIMEOUT_S = 120.0  # imports only; generous for a loaded machine
CPU_MARGIN_S = 1.0  # a worker's own CPU limit per check: a backstop past the wall-time limit, where we cannot act


class MathVerifyPool:
    """Run checks (see math_verify_worker) in worker processes: ``check(job)`` returns the worker's result,
    ``{"timed_out": True}`` past ``timeout_s`` seconds, or ``{"error": ...}`` if the worker died."""

    def __init__(self, timeout_s: float = 10.0, memory_mb: int = 4096) -> None:
        if timeout_s <= 0:
            raise GrapeError(f"math verifier: timeout_s must be positive (got {timeout_s})")
        self.timeout_s = timeout_s
        self.memory_mb = memory_mb
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._idle: list[_Worker] = []
        self._live: set[_Worker] = set()  # idle and busy; what close() stops
        self._finalizer = weakref.finalize(self, _stop_all, self._live, self._pid)

    def check(self, job: dict[str, Any]) -> dict[str, Any]:
        worker = self._take()
        try:
            result = worker.ask(job, self.timeout_s)
        except _TimedOut:
            self._discard(worker)
            return {"timed_out": True}
        except _Died as exc:
            self._discard(worker)
            if worker.process.returncode == -signal.SIGXCPU:  # its own CPU limit ended it: a timeout too
                return {"timed_out": True}
            return {"error": str(exc)}
        with self._lock:
            if worker in self._live:  # not stopped by close() meanwhile
                self._idle.append(worker)
        return result

    @property
    def processes(self) -> list[int]:
        """The process ids of the live workers (for tests and diagnostics)."""
        with self._lock:
            return sorted(w.process.pid for w in self._live)

    def close(self) -> None:
        """Stop every worker (idle ones at once; a busy one is killed). The pool can be used again after."""
        with self._lock:
            self._idle.clear()
        _stop_all(self._live, self._pid)

    def _take(self) -> _Worker:
        with self._lock:
            if os.getpid() != self._pid:  # a forked child: the inherited pipes belong to the parent's workers
                self._pid, self._idle, self._live = os.getpid(), [], set()
                self._finalizer.detach()
                self._finalizer = weakref.finalize(self, _stop_all, self._live, self._pid)
            if self._idle:
                return self._idle.pop()
        # Started outside the lock: other threads need not wait for it.
        worker = _Worker(self.memory_mb, self.timeout_s + CPU_MARGIN_S)
        with self._lock:
            self._live.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        with self._lock:
            self._live.discard(worker)
        worker.kill()


class _TimedOut(Exception):
    pass


class _Died(Exception):
    pass


class _Worker:
    """One worker process and the unread part of its output."""

    def __init__(self, memory_mb: int, cpu_s: float) -> None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
        command = [sys.executable, "-m", "grape.verification.math_verify_worker", str(memory_mb), str(cpu_s)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0, env=env)
        self._buffer = b""
        try:
            ready = self._read_line(time.monotonic() + STARTUP_TIMEOUT_S)
        except (_TimedOut, _Died) as exc:
            self.kill()
            raise GrapeError(f"the math-verify worker did not start ({exc}); is math-verify installed?") from exc
        if ready != "ready":
            self.kill()
            raise GrapeError(f"the math-verify worker did not start: it said {ready[:200]!r}")

    def ask(self, job: dict[str, Any], timeout_s: float) -> dict[str, Any]:
        try:
            self.process.stdin.write((json.dumps(job) + "\n").encode())
        except (OSError, ValueError) as exc:  # a broken pipe, or stdin closed by close()
            raise _Died(f"the math-verify worker had exited ({exc})") from exc
        return json.loads(self._read_line(time.monotonic() + timeout_s))

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        self.process.stdout.close()

    def close_input(self) -> None:
        """End of stdin: an idle worker exits at once, a busy one after its check."""
        try:
            self.process.stdin.close()
        except OSError:
            pass

    def _read_line(self, deadline: float) -> str:
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            try:
                descriptor = self.process.stdout.fileno()
                if left <= 0 or not select.select([descriptor], [], [], left)[0]:
                    raise _TimedOut("timed out")
                chunk = os.read(descriptor, 1 << 16)
            except (OSError, ValueError) as exc:  # closed under us by close() from another thread
                raise _Died(f"the math-verify worker was stopped ({exc})") from exc
            if not chunk:
                raise _Died(f"the math-verify worker exited with code {self.process.wait()}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()


def _stop_all(live: set[_Worker], pid: int, grace_s: float = 2.0) -> None:
    # Also the pool's finalizer (at garbage collection or interpreter exit); a forked child leaves the
    # parent's workers alone.
    if os.getpid() != pid:
        return
    workers = list(live)
    live.clear()
    for worker in workers:
        worker.close_input()
    deadline = time.monotonic() + grace_s
    for worker in workers:
        try:
            worker.process.wait(timeout=max(deadline - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            pass
        worker.kill()
