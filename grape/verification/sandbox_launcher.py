"""Run one Python program in a sandbox. Executed as a script by grape.verification.sandbox (stdlib only).

Two modes, the strongest the machine allows:
- ``namespaces`` (root with unshare(2)): new mount, network, PID, IPC and UTS namespaces. The program
  runs as an unprivileged user of its own in a private tmpfs directory; /tmp, /var/tmp, /dev/shm and
  /run/lock are covered by private tmpfs mounts it cannot write to, so the only writable place is its
  own directory; the network namespace has nothing but a downed loopback; it is PID 1 of its namespace,
  so when it dies every process it started dies with it.
- ``guard`` (anywhere else): its own temporary directory and an audit hook (sandbox_guard.py) that
  refuses sockets, process creation, ctypes and writes outside the directory. Weaker: a best effort.

Both set resource limits: address space, CPU seconds, processes, file size, open files, no core.
Usage: ``python -I sandbox_launcher.py CONFIG.json``; the outcome is written to ``status.json``.
"""

import ctypes
import json
import os
import resource
import signal
import sys
import time

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 16384, 1 << 18
PR_SET_PDEATHSIG = 1
# Each sandbox runs as a user of its own (no passwd entry needed): its process limit is then its own, and
# it cannot signal or ptrace another sandbox. The range is far above the ids that distributions hand out.
SANDBOX_UIDS = 3_000_000_000
COVERED = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")  # the world-writable places on a Linux host


def main() -> None:
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    files = {name: _read(os.path.join(config["host_dir"], name)) for name in config["files"]}
    # Opened before /tmp is covered by the namespace's own tmpfs, so that the outcome reaches the host.
    status = os.open(os.path.join(config["host_dir"], "status.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    mode = config["mode"]
    if mode in ("auto", "namespaces"):
        error = enter_namespaces()
        if error and mode == "namespaces":
            raise SystemExit(f"sandbox: namespaces unavailable ({error})")
        mode = "guard" if error else "namespaces"
    uid = SANDBOX_UIDS + os.getpid()  # the launcher's pid: unique among the sandboxes running now
    workdir = private_workdir(uid) if mode == "namespaces" else os.path.join(config["host_dir"], "work")
    os.makedirs(workdir, exist_ok=True)
    for name, text in files.items():
        with open(os.path.join(workdir, name), "w") as handle:
            handle.write(text)
    pid = os.fork()
    if pid == 0:
        run_child(config, mode, workdir, uid)  # never returns
    outcome = wait_for(pid, config["timeout_s"])
    os.write(status, json.dumps({"mode": mode, **outcome}).encode())
    os.close(status)


def enter_namespaces() -> str | None:
    """Unshare namespaces and cover the world-writable directories; the reason when that is impossible."""
    if os.geteuid() != 0:
        return "not root"
    libc = ctypes.CDLL(None, use_errno=True)
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS
    if libc.unshare(flags) != 0:
        return os.strerror(ctypes.get_errno())
    try:  # mounts made from here on stay in this namespace and never reach the host
        _mount(libc, None, "/", None, MS_REC | MS_PRIVATE, None)
        for path in COVERED:
            if os.path.isdir(path):
                _mount(libc, "tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=0755")
    except OSError as exc:
        return str(exc)
    return None


def private_workdir(uid: int) -> str:
    workdir = "/tmp/sandbox"
    os.mkdir(workdir, 0o700)
    os.chown(workdir, uid, uid)
    return workdir


def run_child(config: dict, mode: str, workdir: str, uid: int) -> None:
    try:
        if mode == "namespaces":
            # PID 1 of the new namespace: a fresh /proc shows only the sandbox's own processes.
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)  # drops every capability: the mounts above cannot be undone
            ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
        set_limits(config)
        python = next((p for p in config["pythons"] if p and os.access(p, os.X_OK)), None)
        if python is None:
            raise RuntimeError(f"no Python interpreter that the sandbox user may run among {config['pythons']}")
        os.chdir(workdir)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}
        entry = "sandbox_guard.py" if mode == "guard" else "main.py"
        os.execve(python, [python, "-I", "-B", entry], env)
    except BaseException as exc:  # report and leave the fork without running the parent's code
        os.write(2, f"sandbox: cannot start the program ({exc})\n".encode())
        os._exit(126)


def set_limits(config: dict) -> None:
    memory = config["memory_mb"] * 1024 * 1024
    cpu = int(config["timeout_s"]) + 1
    limits = {
        resource.RLIMIT_AS: memory,
        resource.RLIMIT_CPU: cpu,
        resource.RLIMIT_NPROC: config["max_processes"],
        resource.RLIMIT_FSIZE: config["max_file_mb"] * 1024 * 1024,
        resource.RLIMIT_NOFILE: 64,
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))


def wait_for(pid: int, timeout_s: float) -> dict:
    """Wait for the program; kill it (and so its namespace or process group) at the deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": False}
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"returncode": -signal.SIGKILL, "timed_out": True}
        time.sleep(0.005)


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def _mount(libc, source, target, fstype, flags, data) -> None:
    encode = lambda s: s.encode() if s is not None else None  # noqa: E731
    if libc.mount(encode(source), encode(target), encode(fstype), flags, encode(data)) != 0:
        raise OSError(ctypes.get_errno(), f"mount {target}: {os.strerror(ctypes.get_errno())}")


if __name__ == "__main__":
    main()
