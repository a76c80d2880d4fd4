"""A math-verify worker process: checks arrive as JSON lines on stdin, results leave as JSON lines on stdout.

Started by grape.verification.math_verify_pool as ``python -m grape.verification.math_verify_worker MEMORY_MB
CPU_S``. math-verify's own timeouts are off here (they use SIGALRM, which only works on a main thread): the pool
bounds each check's wall time from outside and kills a worker that runs over. Two limits of its own back that up
where the pool cannot act (its process was killed while a check ran, and a big-integer power holds the GIL so
that no thread of ours runs): each check may use CPU_S seconds of CPU (then the kernel ends the worker with
SIGXCPU), and the address space is capped at MEMORY_MB, so that a runaway expression (``9^{9^{9^{9}}}``) ends in
a MemoryError rather than in the machine's swap.

A check: ``{"gold": [mode, text], "response": [mode, text]}``; mode ``latex`` reads the text as one LaTeX
expression (it is wrapped in ``$...$``), mode ``text`` lets math-verify find the answer in it (\\boxed{} first,
then "final answer is"/"answer:" anchors, then the last LaTeX or plain expression). The result:
``{"correct": bool | None, "gold": str | None, "found": str | None}`` (None where nothing could be parsed;
the strings are what math-verify extracted), or ``{"error": "..."}``.
"""

from __future__ import annotations

import json
import logging
import math
import os
import resource
import signal
import sys
import threading
import time
from functools import lru_cache
from typing import Any

_SHOWN = 80  # characters of an extracted answer that go back for the verdict's reason


def main() -> None:
    memory_mb, cpu_s = int(sys.argv[1]), float(sys.argv[2])
    limit = memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXCPU would otherwise dump a core
    # Ctrl-C reaches the whole process group; the parent decides when this worker ends (it closes stdin).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    # The protocol keeps the real stdout; anything a library prints goes to stderr instead.
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # "timeout is disabled": the pool bounds time
    from math_verify import parse, verify  # noqa: F401 (imported before "ready" so that startup is not timed)

    protocol.write("ready\n")
    protocol.flush()
    for line in sys.stdin:
        _allow_cpu(cpu_s)
        try:
            result = check(json.loads(line))
        except Exception as exc:  # MemoryError and RecursionError included
            result = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        protocol.write(json.dumps(result) + "\n")
        protocol.flush()


def check(job: dict[str, Any]) -> dict[str, Any]:
    """Parse the gold and the response with math-verify and compare them (gold first: verify is not symmetric)."""
    from math_verify import verify

    gold = parsed(*job["gold"])
    found = parsed(*job["response"])
    if not gold or not found:
        return {"correct": None, "gold": _shown(gold), "found": _shown(found)}
    correct = verify(list(gold), list(found), timeout_seconds=None)
    return {"correct": bool(correct), "gold": _shown(gold), "found": _shown(found)}


@lru_cache(maxsize=1024)  # a gold answer is parsed once for all the candidates of its item
def parsed(mode: str, text: str) -> tuple[Any, ...]:
    """math-verify's parse of ``text``: (sympy expression, the extracted string), or () if nothing was found.

    An expression that is not valid LaTeX (``<203>``) falls back to the text mode.
    """
    if mode == "latex":
        result = _parse(f"${text}$")
        if any(not isinstance(part, str) for part in result):
            return result
    return _parse(text)


def _parse(text: str) -> tuple[Any, ...]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse

    targets = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
    return tuple(parse(text, targets, parsing_timeout=None))


def _shown(result: tuple[Any, ...]) -> str | None:
    if not result:
        return None
    text = result[-1] if isinstance(result[-1], str) else str(result[0])
    return text if len(text) <= _SHOWN else text[: _SHOWN - 1] + "…"


def _allow_cpu(seconds: float) -> None:
    """Let the next check use ``seconds`` more CPU time: the soft limit moves on, the hard one stays."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + seconds)
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _exit_when_orphaned(parent: int) -> None:
    # stdin's end of file stops an idle worker; this stops a busy one whose parent was killed (when the check
    # lets this thread run; else the CPU limit does).
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


if __name__ == "__main__":
    main()
