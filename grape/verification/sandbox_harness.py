"""Inside the sandbox: run the program, then its tests, and prove a pass. Stdlib only; started by
sandbox_launcher.py as ``python -I -B sandbox_harness.py`` with the payload on fd 3 and the proof pipe on fd 4.

1. Read the payload (program, tests, limits, nonce) from fd 3 and close it: the program and its tests are
   never in a file the program can read.
2. Set the resource limits (here, inside the namespaces, so that the process limit counts the sandbox's
   own processes only); in guard mode install the audit hook.
3. Run the program as module ``solution`` (so an ``if __name__ == "__main__":`` block stays out of the
   way), catching SystemExit: ``sys.exit()``, ``exit()`` or ``unittest.main()`` at import do not stop
   the tests. Any other exception is a failure.
4. Run the tests in the program's namespace. Any exception, SystemExit included (a candidate's function
   may call ``sys.exit(0)``), is a failure.
5. Only then write the nonce to fd 4 and leave at once. An exit status proves nothing: code that ends
   the process early (``os._exit(0)``, a signal) leaves no nonce behind, and fails.
"""

import builtins
import json
import os
import resource
import sys
import traceback

PAYLOAD_FD, PROOF_FD = 3, 4


def main() -> None:
    with os.fdopen(PAYLOAD_FD, "rb") as handle:
        payload = json.loads(handle.read())
    nonce, harness_pid = payload.pop("nonce"), os.getpid()
    os.set_inheritable(PROOF_FD, False)  # programs the candidate starts do not get it
    set_limits(payload)
    if payload["mode"] == "guard":
        sys.path.insert(0, os.getcwd())
        import sandbox_guard

        sandbox_guard.install(os.getcwd())
    sys.argv = ["main.py"]
    namespace = {"__name__": "solution", "__builtins__": builtins}
    try:
        exec(compile(payload["program"], "main.py", "exec"), namespace)
    except SystemExit:
        pass  # the tests run whatever the program does at import
    except BaseException:
        fail()
    try:
        exec(compile(payload["tests"], "tests.py", "exec"), namespace)
    except BaseException:
        fail()
    if os.getpid() != harness_pid:
        os._exit(1)  # a process the program forked ran on into the tests: it cannot speak for the harness
    flush()
    os.write(PROOF_FD, f"{nonce}\n".encode())
    os._exit(0)  # before atexit handlers, finalizers or threads of the program can run


def set_limits(payload: dict) -> None:
    limits = {
        resource.RLIMIT_AS: payload["memory_mb"] << 20,  # address space, larger than the resident memory
        resource.RLIMIT_CPU: int(payload["timeout_s"]) + 1,
        resource.RLIMIT_NPROC: payload["max_processes"],
        resource.RLIMIT_FSIZE: payload["max_file_mb"] << 20,
        resource.RLIMIT_NOFILE: 64,
        resource.RLIMIT_CORE: 0,
    }
    for kind, value in limits.items():
        resource.setrlimit(kind, (value, value))


def fail() -> None:
    traceback.print_exc()
    flush()
    os._exit(1)


def flush() -> None:
    for stream in (sys.__stdout__, sys.__stderr__, sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass  # the program may have closed or replaced it


if __name__ == "__main__":
    main()
