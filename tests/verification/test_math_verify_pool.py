"""The math verifier's worker processes: a check past its time is unknown, never a hang; no process outlives
its verifier; threads, a fork and pickling (how Ray ships a verifier) are safe."""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from grape.verification import Verdict
from grape.verification.math_answer import MathVerifier

pytest.importorskip("math_verify", reason="the math verifier needs math-verify: pip install 'math-verify[antlr4_13_2]'")

# sympy tries to evaluate 9^(9^(9^9)): it never finishes (and holds the GIL inside one big-integer power).
ENDLESS = "\\boxed{9^{9^{9^{9}}}}"


def _running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie left for init to reap counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _wait_until_ended(pids: list[int], within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while any(_running(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _check_from_threads(verifier, responses, threads, gold="1") -> list[Verdict]:
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda response: verifier(response, {"answer": gold}), responses))


def test_a_check_past_its_time_is_unknown_and_its_worker_replaced():
    verifier = MathVerifier(timeout_s=1.0)
    try:
        assert verifier("\\boxed{3}", {"answer": "3"}).correct is True
        [first] = verifier._pool.processes
        started = time.monotonic()
        # From a thread, as `grape verify` calls it: math-verify's own SIGALRM timeouts would fail here.
        with ThreadPoolExecutor(1) as pool:
            verdict = pool.submit(verifier, ENDLESS, {"answer": "5"}).result()
        assert time.monotonic() - started < 10
        assert verdict == Verdict(None, "math-verify took over 1s: answer '\\\\boxed{9^{9^{9^{9}}}}' (boxed), gold '5'")
        assert _wait_until_ended([first], within_s=5)
        assert verifier("\\boxed{5}", {"answer": "5"}).correct is True  # a fresh worker
        assert verifier._pool.processes != [first]
    finally:
        verifier.close()


def test_concurrent_checks_get_their_own_workers_and_right_verdicts():
    verifier = MathVerifier()
    try:
        verdicts = _check_from_threads(verifier, [f"The answer is {n}" for n in range(24)], threads=4, gold="7")
        assert [v.correct for v in verdicts] == [n == 7 for n in range(24)]
        assert 1 <= len(verifier._pool.processes) <= 4
    finally:
        verifier.close()


def test_close_and_garbage_collection_stop_every_worker():
    verifier = MathVerifier()
    _check_from_threads(verifier, ["\\boxed{1}"] * 6, threads=2)
    pids = verifier._pool.processes
    verifier.close()
    assert pids and _wait_until_ended(pids, within_s=5)
    assert verifier._pool.processes == []
    assert verifier("\\boxed{1}", {"answer": "1"}).correct is True  # usable again after close()
    pids = verifier._pool.processes
    del verifier
    gc.collect()
    assert _wait_until_ended(pids, within_s=5)


def test_a_pickled_copy_starts_workers_of_its_own():
    verifier = MathVerifier(timeout_s=3.0)
    try:
        assert verifier("\\boxed{2}", {"answer": "2"}).correct is True
        copy = pickle.loads(pickle.dumps(verifier))
        assert copy.timeout_s == 3.0 and copy._pool.processes == []
        assert copy("\\boxed{2}", {"answer": "3"}).correct is False
        assert set(copy._pool.processes).isdisjoint(verifier._pool.processes)
        copy.close()
    finally:
        verifier.close()


def test_a_forked_child_leaves_the_parents_workers_alone():
    verifier = MathVerifier()
    try:
        assert verifier("\\boxed{4}", {"answer": "4"}).correct is True
        parents = verifier._pool.processes
        reading, writing = os.pipe()
        child = os.fork()
        if child == 0:  # the child: its own worker, and the parent's is not touched by its exit
            ok = verifier("\\boxed{4}", {"answer": "4"}).correct is True
            ok = ok and set(verifier._pool.processes).isdisjoint(parents)
            verifier.close()
            os.write(writing, b"1" if ok else b"0")
            os._exit(0)
        os.close(writing)
        assert os.read(reading, 1) == b"1"
        os.waitpid(child, 0)
        assert verifier._pool.processes == parents
        assert verifier("\\boxed{4}", {"answer": "5"}).correct is False
    finally:
        verifier.close()


@pytest.mark.parametrize("busy", [False, True])
def test_workers_end_when_their_process_is_killed(busy):
    """An idle worker sees the end of its stdin; a busy one, stuck in a big-integer power where no thread of
    its own can run, is ended by its own CPU limit (timeout_s + 1 s of CPU)."""
    program = (
        "import os, sys, threading, time\n"
        "from grape.verification.math_answer import MathVerifier\n"
        "verifier = MathVerifier(timeout_s=2.0)\n"
        "verifier('\\\\boxed{1}', {'answer': '1'})\n"
        "print(verifier._pool.processes[0], flush=True)\n"
        f"if {busy}:\n"
        f"    threading.Thread(target=verifier, args=({ENDLESS!r}, {{'answer': '5'}}), daemon=True).start()\n"
        "    time.sleep(0.5)\n"
        "os.kill(os.getpid(), 9)\n"
    )
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=120)
    worker = int(done.stdout.split()[0])
    assert _wait_until_ended([worker], within_s=60 if busy else 5)
