"""Run one Python program and its tests in a sandbox. Executed as a script by grape.verification.sandbox
(stdlib only): ``python -I sandbox_launcher.py CONFIG.json``; the outcome is written to ``status.json``.

Three modes (docs/security.md says what each guarantees):
- ``namespaces``: a user namespace with mount, PID, network, IPC and UTS namespaces and a root file
  system of its own (sandbox_namespaces.py). Needs no root: only that the kernel allows user namespaces.
- ``bwrap``: the same wall built by bubblewrap, for hosts that allow user namespaces to bwrap only.
- ``guard``: no namespaces; an audit hook (sandbox_guard.py) in the program's process. Not a wall.
In every mode: a fresh uid when the launcher is root, ``PR_SET_NO_NEW_PRIVS``, a seccomp filter
(sandbox_seccomp.py) where libseccomp is installed, and resource limits (set by the harness).

The program never gets a file: sandbox_harness.py reads it, the tests and a random nonce from a
memfd, runs them, and writes the nonce to a pipe only after the last test statement. A pass is that
nonce arriving here, never an exit status. The first line on that pipe is written before the
program exists and says whether the seccomp filter is loaded.
"""

import ctypes
import json
import os
import select
import shutil
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # isolated mode leaves out the script's folder
import sandbox_namespaces  # noqa: E402
import sandbox_seccomp  # noqa: E402

PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_SET_CHILD_SUBREAPER = 1, 4, 38, 36
# Each sandbox started by root runs as a uid of its own (no passwd entry needed): its processes, limits and
# signals are its own, and no host file is its. The range is far above the ids distributions hand out.
SANDBOX_UIDS = 2_000_000_000  # + a pid (at most 2**22): below 2**31, which some tools (bwrap) read as signed
HERE = os.path.dirname(os.path.abspath(__file__))
PAYLOAD_FD, PROOF_FD = 3, 4  # where the harness finds its input and its proof channel
_libc = ctypes.CDLL(None, use_errno=True)


def main() -> None:
    with open(sys.argv[1]) as handle:
        config = json.load(handle)
    status = os.open(os.path.join(config["host_dir"], "status.json"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    nonce = os.urandom(16).hex()
    payload = os.memfd_create("grape-payload")  # never a file the program could find
    keys = ("program", "tests", "mode", "timeout_s", "memory_mb", "max_processes", "max_file_mb")
    os.write(payload, json.dumps({**{k: config[k] for k in keys}, "nonce": nonce}).encode())
    os.lseek(payload, 0, os.SEEK_SET)
    proof_read, proof_write = os.pipe()
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)  # orphans of the program come back to us, to be killed
    pid = os.fork()
    if pid == 0:
        start_sandbox(config, payload, proof_write)  # never returns
    os.close(proof_write)
    outcome = wait_for(pid, config["timeout_s"])
    kill_descendants()
    lines = read_all(proof_read).decode(errors="replace").splitlines()
    walls = json.loads(lines[0]) if lines and lines[0].startswith("{") else {}
    result = {"mode": config["mode"], **outcome, "proven": nonce in lines[1:], "seccomp": walls.get("seccomp", False)}
    os.write(status, json.dumps(result).encode())
    os.close(status)


def start_sandbox(config: dict, payload: int, proof: int) -> None:
    """In the forked child: build the mode's wall around the harness and exec it."""
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.dup2(os.dup(payload), PAYLOAD_FD)
        os.dup2(os.dup(proof), PROOF_FD)
        fresh = SANDBOX_UIDS + os.getpid()
        root = os.geteuid() == 0 and _mapped(fresh)  # root of a user namespace may have no other uid to go to
        uid, gid = (fresh, fresh) if root else (os.getuid(), os.getgid())
        mode = config["mode"]
        if mode == "namespaces":
            argv, env = namespaces_command(config, root, uid, gid)  # forks: the exec below runs as PID 1
        elif mode == "bwrap":
            argv, env = bwrap_command(config, root, uid, gid)
        else:
            argv, env = guard_command(config, root, uid, gid)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # a change of uid clears it
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError("cannot set no_new_privs")
        seccomp = sandbox_seccomp.libseccomp() is not None
        if seccomp and mode != "bwrap":  # bwrap loads its copy of the filter itself, after its own setup
            sandbox_seccomp.install_filter(os.getpid(), signals_anywhere=mode == "namespaces")
        os.write(PROOF_FD, (json.dumps({"seccomp": seccomp}) + "\n").encode())
        os.execve(argv[0], argv, env)
    except BaseException as exc:  # report and leave the fork without running the parent's code
        os.write(2, f"sandbox: cannot start the program ({exc})\n".encode())
        os._exit(126)


def namespaces_command(config: dict, root: bool, uid: int, gid: int) -> tuple[list[str], dict]:
    if root:
        become(uid, gid)
    python = reachable_python(config["pythons"])
    sandbox_namespaces.enter(uid, gid)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # this process waits for PID 1: never alone
    sources = sandbox_namespaces.open_sources([_prefix(python)])  # now: a bind takes its source from this namespace
    new_root = "/tmp" if os.path.isdir("/tmp") else "/mnt"
    files = {"/grape/sandbox_harness.py": _read(os.path.join(HERE, "sandbox_harness.py"))}
    sandbox_namespaces.build_root(sources, new_root, files, work_mb=max(64, 4 * config["max_file_mb"]))
    child = os.fork()  # the first child in the new PID namespace is its PID 1: when it ends, all end
    if child:
        pass_on_status(child)
    sandbox_namespaces.drop_capabilities()
    return _harness_argv(python, "/grape/sandbox_harness.py"), _env(sandbox_namespaces.WORKDIR)


def bwrap_command(config: dict, root: bool, uid: int, gid: int) -> tuple[list[str], dict]:
    if root:
        become(uid, gid)
    python = reachable_python(config["pythons"])
    workdir = sandbox_namespaces.WORKDIR
    argv = [config["bwrap"], "--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent",
            "--as-pid-1", "--cap-drop", "ALL", "--dev", "/dev", "--size", str(max(64, 4 * config["max_file_mb"]) << 20),
            "--tmpfs", workdir, "--chdir", workdir, "--dir", "/grape"]  # fmt: skip
    for link in sandbox_namespaces.SYSTEM_DIRS:
        if os.path.islink(link):
            argv += ["--symlink", os.readlink(link), link]
    for path in sandbox_namespaces.bind_sources([_prefix(python)]):
        argv += ["--ro-bind", path, path]
    harness = os.open(os.path.join(HERE, "sandbox_harness.py"), os.O_RDONLY)
    os.set_inheritable(harness, True)
    argv += ["--ro-bind-data", str(harness), "/grape/sandbox_harness.py", "--remount-ro", "/"]
    if sandbox_seccomp.libseccomp() is not None:
        argv += ["--seccomp", str(sandbox_seccomp.exported_filter(signals_anywhere=True))]
    argv += ["--", *_harness_argv(python, "/grape/sandbox_harness.py")]
    return argv, _env(workdir)


def guard_command(config: dict, root: bool, uid: int, gid: int) -> tuple[list[str], dict]:
    workdir = os.path.join(config["host_dir"], "work")
    os.makedirs(workdir)
    for name in ("sandbox_harness.py", "sandbox_guard.py"):
        shutil.copy(os.path.join(HERE, name), workdir)
    if root:  # the fresh uid may enter the host folder (not list it) and own its working directory only
        os.chmod(config["host_dir"], 0o711)
        os.chown(workdir, uid, gid)
        become(uid, gid)
    os.chdir(workdir)
    return _harness_argv(reachable_python(config["pythons"]), "sandbox_harness.py"), _env(workdir)


def reachable_python(pythons: list[str]) -> str:
    """The first interpreter this (possibly fresh) uid may run, as a real path (a venv's link resolved)."""
    for python in pythons:
        if os.access(python, os.X_OK):
            return os.path.realpath(python)
    raise RuntimeError(f"no Python interpreter that the sandbox user may run among {pythons}")


def become(uid: int, gid: int) -> None:
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)  # root's capabilities go with it
    # A change of uid makes the process undumpable, which gives its /proc files to root: it could no longer
    # write its own uid_map. No other process runs as this uid, so nobody gains by its being dumpable.
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # the change of uid cleared it


def pass_on_status(child: int) -> None:
    """Wait for the sandbox's PID 1 and end the same way (killed by a signal: killed by it too)."""
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        signal.signal(os.WTERMSIG(status), signal.SIG_DFL)
        os.kill(os.getpid(), os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 125)


def wait_for(pid: int, timeout_s: float) -> dict:
    """Wait for the sandbox; kill it (and so its PID namespace) at the deadline."""
    deadline = time.monotonic() + timeout_s
    handle = os.pidfd_open(pid)
    try:
        while time.monotonic() < deadline:
            select.select([handle], [], [], max(0.0, deadline - time.monotonic()))
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return {"returncode": os.waitstatus_to_exitcode(status), "timed_out": False}
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        return {"returncode": -signal.SIGKILL, "timed_out": True}
    finally:
        os.close(handle)


def kill_descendants() -> None:
    """Kill what the program left behind (guard mode; namespaces take theirs with them): as a subreaper,
    this process inherits every orphan, even one in a session of its own."""
    for _ in range(1000):
        children = set()
        for task in os.listdir("/proc/self/task"):
            try:
                children.update(int(c) for c in _read(f"/proc/self/task/{task}/children").split())
            except OSError:
                continue
        if not children:
            return
        for child in children:
            try:
                os.kill(child, signal.SIGKILL)
                os.waitpid(child, 0)
            except (ProcessLookupError, ChildProcessError):
                pass


def read_all(descriptor: int) -> bytes:
    os.set_blocking(descriptor, False)  # a leftover writer (now dead) cannot make us wait
    chunks = []
    try:
        while chunk := os.read(descriptor, 65536):
            chunks.append(chunk)
    except BlockingIOError:
        pass
    return b"".join(chunks)


def _harness_argv(python: str, harness: str) -> list[str]:
    return [python, "-I", "-B", harness]


def _mapped(uid: int) -> bool:
    """Whether ``uid`` exists in this process's user namespace (always, outside any)."""
    for line in _read("/proc/self/uid_map").splitlines():
        inside, _, count = map(int, line.split())
        if inside <= uid < inside + count:
            return True
    return False


def _prefix(python: str) -> str:
    """The installation an interpreter belongs to: /usr for /usr/bin/python3.11."""
    return os.path.dirname(os.path.dirname(python))


def _env(workdir: str) -> dict:
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": workdir, "TMPDIR": workdir, "LANG": "C.UTF-8"}


def _read(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


if __name__ == "__main__":
    main()
