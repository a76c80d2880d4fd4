"""Look a verifier up by name: ``math``, ``exact``, ``regex:PATTERN``, ``code``, ``python:module:function``."""

from __future__ import annotations

from grape.errors import GrapeError
from grape.verification.verdict import Verifier

NAMES = ("math", "exact", "regex:PATTERN", "code", "python:module:function")


def get_verifier(name: str) -> Verifier:
    """The verifier called ``name``: a callable ``(response_text, item) -> Verdict``."""
    # Imports stay inside the branches so that `get_verifier("math")` does not load the sandbox.
    if name == "math":
        from grape.verification.math_answer import verify_math

        return verify_math
    if name == "exact":
        from grape.verification.text_match import verify_exact

        return verify_exact
    if name.startswith("regex:"):
        from grape.verification.text_match import regex_verifier

        return regex_verifier(name.removeprefix("regex:"))
    if name == "code":
        from grape.verification.code_tests import verify_code

        return verify_code
    if name.startswith("python:"):
        from grape.verification.user_function import user_verifier

        return user_verifier(name.removeprefix("python:"))
    raise GrapeError(f"unknown verifier '{name}': use one of {', '.join(NAMES)}")
