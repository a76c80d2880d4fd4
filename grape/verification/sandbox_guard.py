"""The audit hook of the sandbox's ``guard`` mode, installed by sandbox_harness.py before the program runs.

Used only where no wall can be built and the user said ``--unsafe-sandbox``. It refuses sockets, new
processes, ctypes and any change to the file system outside the working directory. An audit hook
lives in the program's own interpreter, so the program can switch it off (a frame walk reaches these
globals): it stops accidents, not an adversary. The seccomp filter and the fresh uid of that mode are
the parts the program cannot undo. docs/security.md says what each mode guarantees.
"""

import os
import sys

ROOT = os.path.realpath(os.getcwd())
REFUSED = {
    "socket.__new__", "socket.connect", "socket.bind", "socket.getaddrinfo", "socket.sendto",
    "os.fork", "os.forkpty", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.kill", "os.killpg",
    "subprocess.Popen", "pty.spawn", "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "_posixsubprocess.fork_exec",
}  # fmt: skip
PATH_CHANGES = {
    "os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.symlink", "os.link",
    "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile", "shutil.copytree",
}  # fmt: skip
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _inside(path) -> bool:
    if isinstance(path, int):
        return True  # an already-open descriptor was checked when it was opened
    path = os.fsdecode(path)
    return os.path.realpath(path) == ROOT or os.path.realpath(path).startswith(ROOT + os.sep)


def _hook(event: str, args: tuple) -> None:
    if event in REFUSED:
        raise PermissionError(f"sandbox: {event} is not allowed")
    if event == "open":
        path, mode, flags = args
        writes = any(c in (mode or "") for c in "wax+") or bool((flags or 0) & WRITE_FLAGS)
        if writes and path is not None and not _inside(path):
            raise PermissionError(f"sandbox: writing outside the sandbox directory is not allowed ({path})")
    elif event in PATH_CHANGES:
        for path in args:
            if isinstance(path, (str, bytes, os.PathLike)) and not _inside(path):
                raise PermissionError(f"sandbox: {event} outside the sandbox directory is not allowed ({path})")


def install(root: str) -> None:
    global ROOT
    ROOT = os.path.realpath(root)
    sys.addaudithook(_hook)
