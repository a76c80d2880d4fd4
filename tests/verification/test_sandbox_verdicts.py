"""Issue 19, item 2: a pass is proven by the harness after the last test, never read from an exit status.

Wrong code that exits with status 0 before the tests (the ways LLM answers end) must be judged incorrect;
right code that does the same must still be judged by its tests. Run in the strongest mode the machine
has, and in guard mode (the proof does not depend on the wall).
"""

from __future__ import annotations

import pytest

from grape.verification import get_verifier
from grape.verification.sandbox import WALLS, wall_unavailable

TESTS = {"tests": ["assert add(2, 3) == 5", "assert add(-1, 1) == 0"]}
WRONG, RIGHT = "def add(a, b):\n    return a - b\n", "def add(a, b):\n    return a + b\n"
EXITS = {  # what a candidate does at import, after defining add
    "sys.exit(main()) under __main__": (
        "import sys\ndef main():\n    return 0\nif __name__ == '__main__':\n    sys.exit(main())"
    ),
    "unittest.main()": "import unittest\nunittest.main()",
    "exit()": "exit()",
    "quit(0)": "quit(0)",
    "sys.exit(0)": "import sys\nsys.exit(0)",
    "raise SystemExit": "raise SystemExit",
}  # fmt: skip
MODE = next((m for m in WALLS if not wall_unavailable(m)), "guard")


@pytest.fixture(scope="module", params=sorted({MODE, "guard"}))
def code(request):
    return get_verifier("code", mode=request.param, allow_unsafe=request.param == "guard")


@pytest.mark.parametrize("ending", EXITS)
def test_wrong_code_that_exits_0_at_import_fails(code, ending):
    verdict = code(WRONG + EXITS[ending], TESTS)
    assert verdict.correct is False and "AssertionError" in verdict.reason


@pytest.mark.parametrize("ending", EXITS)
def test_right_code_that_exits_at_import_is_still_tested_and_passes(code, ending):
    assert code(RIGHT + EXITS[ending], TESTS).correct is True


def test_code_that_ends_the_process_with_status_0_leaves_no_proof_and_fails(code):
    """os._exit(0) skips everything after it: the tests never run, so even right code cannot be proven."""
    for candidate in (WRONG, RIGHT):
        verdict = code(candidate + "import os\nos._exit(0)", TESTS)
        assert (verdict.correct, verdict.reason[:46]) == (False, "exited with status 0 before the tests finished")


def test_wrong_code_that_kills_itself_fails(code):
    assert code(WRONG + "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)", TESTS).correct is False


def test_a_function_that_exits_0_when_the_tests_call_it_fails(code):
    verdict = code("import sys\ndef add(a, b):\n    sys.exit(0)", TESTS)
    assert verdict.correct is False and "SystemExit" in verdict.reason


@pytest.mark.parametrize(
    "forgery",
    [
        "import atexit, os\natexit.register(lambda: os._exit(0))",  # a clean exit after the failed tests
        "import os\nfor fd in range(3, 64):\n    try:\n        os.write(fd, b'0' * 32 + b'\\n')\n"
        "    except OSError:\n        pass",
        "print('tests passed')\nopen('status.json', 'w').write('{\"proven\": true, \"returncode\": 0}')",
        "import os\nif os.fork() == 0:\n    pass\nelse:\n    os.wait()",  # a child that runs on into the tests
    ],
    ids=["atexit-exit-0", "guessed-proof-on-every-fd", "printed-and-written-pass", "forked-child"],
)
def test_a_pass_cannot_be_claimed_without_passing(code, forgery):
    assert code(WRONG + forgery, TESTS).correct is False


def test_the_main_block_of_right_code_does_not_run(code):
    """Run as module `solution`: a main() that reads stdin (EOF here) does not sink a right function."""
    assert code(RIGHT + "if __name__ == '__main__':\n    print(add(int(input()), 1))", TESTS).correct is True
