"""One run per output: a lock on ``<output>.lock`` that a run holds from its start to its last write.

Two runs writing one output would share its parts folder and replace each other's files; the second
run stops at once instead, naming the process that holds the output. The lock is the kernel's
(``flock``): a run that is killed lets go of it with its last file descriptor, so there is never a
stale lock to remove by hand. The lock file is removed while still held, as the run ends; a run
that opened the old file just then finds it gone once it holds it, and takes the new one.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from grape.errors import GrapeError, file_system_error


def lock_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".lock")


class OutputLock:
    """Hold ``<output>.lock`` (raise a one-line GrapeError when another process holds it); `release` it."""

    def __init__(self, output: str | Path):
        self.output, self.path = Path(output), lock_path(output)
        self._fd: int | None = _acquire(self.path, self.output)

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)  # while still held, so that no run ever holds a removed file
        except OSError:
            pass  # a folder that became read-only: the file stays, unlocked, and is reused next time
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> OutputLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _acquire(path: Path, output: Path) -> int:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise file_system_error(output, exc) from exc
    for _ in range(100):  # another turn only when the holder removed the file between our open and lock
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise file_system_error(output, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise GrapeError(
                f"{output} is in use by {holder} (another grape run is writing it): wait for that run to "
                "finish, or write to another output"
            ) from None
        except OSError as exc:  # a file system without locks
            os.close(fd)
            raise file_system_error(path, exc, doing="lock") from exc
        if _is_current(fd, path):
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            except OSError as exc:
                os.close(fd)
                raise file_system_error(path, exc) from exc
            return fd
        os.close(fd)
    raise GrapeError(f"cannot lock {path}: it keeps being replaced by other processes")


def _holder(fd: int) -> str:
    """The holder's PID as it wrote it; a holder that has the lock but not yet its PID gets a second to write it."""
    for _ in range(20):
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        if text.isdigit():
            return f"PID {text}"
        time.sleep(0.05)
    return "another process (starting up)"


def _is_current(fd: int, path: Path) -> bool:
    """Whether the locked file is still the one at ``path`` (not removed by a holder that let go)."""
    try:
        now = path.stat()
    except FileNotFoundError:
        return False
    held = os.fstat(fd)
    return (held.st_dev, held.st_ino) == (now.st_dev, now.st_ino)
