"""The `code` verifier: run the candidate's code against the item's tests in the sandbox.

Tests come from the item in any of the usual shapes: ``tests`` (Python source, or a list of assert
lines), MBPP's ``test_list`` (+ ``test_setup_code``), or HumanEval's ``test`` + ``entry_point``.
The candidate passes only when the sandbox's harness proves that the tests ran to their end (a nonce it
writes after the last test statement); an exit status of 0 proves nothing, since the candidate's own code
may exit (``sys.exit(0)``, ``os._exit(0)``, ``unittest.main()``) before the tests run. The candidate's
code runs as module ``solution``: its ``if __name__ == "__main__":`` block is not run.
"""

from __future__ import annotations

import re
from typing import Any

from grape.console import console
from grape.verification.sandbox import SandboxResult, SandboxSettings, describe, run_python, sandbox_mode, summary
from grape.verification.verdict import Verdict, Verifier

_FENCE = re.compile(r"```[ \t]*([\w+-]*)[^\n]*\n(.*?)```", re.DOTALL)


def code_verifier(settings: SandboxSettings | None = None) -> Verifier:
    """A `code` verifier with its own sandbox limits (time, memory, processes). Picks the sandbox mode
    now: a GrapeError here, before any candidate, when there is no wall and no ``allow_unsafe``; then says
    in one line which wall the candidates will run in."""
    settings = settings or SandboxSettings()
    sandbox = describe(sandbox_mode(settings), settings)
    console.print(summary(sandbox), highlight=False)

    def verify_code(response_text: str, item: dict[str, Any]) -> Verdict:
        tests = tests_program(item)
        if tests is None:
            return Verdict(None, "no tests in the item (tests, test_list or test + entry_point)")
        code = code_from_response(response_text or "")
        if not code.strip():
            return Verdict(False, "no code in the response")
        return verdict_of(run_python(code, settings, tests=tests), settings)

    verify_code.sandbox = sandbox  # for the verify stage's sidecar
    return verify_code


def code_from_response(text: str) -> str:
    """The Python code of a response: its fenced blocks tagged python/py (else any fenced block; the
    longest), or the whole text when it has no fence."""
    blocks = _FENCE.findall(text)
    if not blocks:
        return text
    python = [body for lang, body in blocks if lang.lower() in ("python", "py", "python3")]
    return max(python or [body for _, body in blocks], key=len)


def tests_program(item: dict[str, Any]) -> str | None:
    """The test source to run after the candidate's code, or None when the item has no tests."""
    tests = item.get("tests")
    if isinstance(tests, list):
        tests = "\n".join(str(t) for t in tests)
    if isinstance(tests, str) and tests.strip():
        return tests
    if item.get("test_list"):
        return "\n".join([str(item.get("test_setup_code") or ""), *map(str, item["test_list"])])
    if item.get("test") and item.get("entry_point"):
        return f"{item['test']}\n\ncheck({item['entry_point']})\n"
    return None


_NOT_THE_ERROR = ("Traceback (most recent call last):", "During handling of the above exception")


def error_line(stderr: str) -> str:
    """The line of ``stderr`` that names the error: the last unindented line that is not a traceback's
    header. Processes the candidate forked may interleave their tracebacks, so the very last line can be
    another process's "Traceback (most recent call last):"; the last line is the fallback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    named = [line for line in lines if not line[0].isspace() and not line.startswith(_NOT_THE_ERROR)]
    return (named or lines or [""])[-1].strip()


def verdict_of(result: SandboxResult, settings: SandboxSettings) -> Verdict:
    if result.proven:
        return Verdict(True, "tests passed")
    if result.timed_out:
        return Verdict(False, f"timeout: still running after {settings.timeout_s:g} s (killed)")
    if result.returncode == 0:
        return Verdict(False, "exited with status 0 before the tests finished (e.g. os._exit): no proof of a pass")
    last = error_line(result.stderr)
    if "MemoryError" in last:
        return Verdict(False, f"memory limit ({settings.memory_mb} MB) exceeded: {last[:200]}")
    if result.returncode < 0:
        return Verdict(False, f"killed by signal {-result.returncode}" + (f": {last[:200]}" if last else ""))
    return Verdict(False, f"failed (exit {result.returncode}): {last[:300] or 'no error message'}")
