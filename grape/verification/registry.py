"""Look a verifier up by name: ``math``, ``number``, ``number-stated``, ``exact``, ``regex:PATTERN``, ``code``,
``tool-call``, ``python:module:function``."""

from __future__ import annotations

from typing import Any

from grape.errors import GrapeError
from grape.verification.verdict import Verdict, Verifier

NAMES = ("math", "number", "number-stated", "exact", "regex:PATTERN", "code", "tool-call", "python:module:function")


def judged_by(name: str) -> tuple[str, ...]:
    """The item fields of which a verifier needs one to judge at all (none known: a user's function, or a regex
    without an ``answer`` group, judges what it judges)."""
    if name in ("math", "number", "number-stated", "exact", "tool-call") or (
        name.startswith("regex:") and "(?P<answer>" in name
    ):
        return ("answer",)
    if name == "code":
        return ("tests", "test_list", "test")
    return ()


def get_verifier(name: str, **options: Any) -> Verifier:
    """The verifier called ``name``: a callable ``(response_text, item) -> Verdict``.

    ``options`` configure the `code` verifier's sandbox (`SandboxSettings`: timeout_s, memory_mb, ...).
    """
    if options and name != "code":
        raise GrapeError(f"verifier '{name}' takes no options (got {sorted(options)})")
    # Imports stay inside the branches so that `get_verifier("number")` does not load the sandbox.
    if name == "math":
        from grape.verification.math_answer import MathVerifier

        return MathVerifier()
    if name == "number":
        from grape.verification.number_answer import verify_number

        return verify_number
    if name == "number-stated":
        from grape.verification.number_answer import verify_stated_number

        return verify_stated_number
    if name == "exact":
        from grape.verification.text_match import verify_exact

        return verify_exact
    if name.startswith("regex:"):
        from grape.verification.text_match import regex_verifier

        return regex_verifier(name.removeprefix("regex:"))
    if name == "code":
        from grape.verification.code_tests import code_verifier
        from grape.verification.sandbox import SandboxSettings

        try:
            return code_verifier(SandboxSettings(**options))
        except TypeError as exc:
            raise GrapeError(f"verifier 'code': {exc}") from exc
    if name == "tool-call":  # the calls vs the item's gold calls under BFCL's rules (grape/tools, docs/tools.md)
        from grape.tools.verifier import judge

        def verify_tool_call(response_text: str, item: dict[str, Any]) -> Verdict:
            judgement = judge(response_text, item)
            return Verdict(judgement.correct, judgement.reason)

        return verify_tool_call
    if name.startswith("python:"):
        from grape.verification.user_function import user_verifier

        return user_verifier(name.removeprefix("python:"))
    raise GrapeError(f"unknown verifier '{name}': use one of {', '.join(NAMES)}")
