"""The `python:module:function` verifier: a user's own function, imported by name.

The function takes ``(response_text, item)`` and returns a `Verdict`, a bool (or None), or a
``(bool, reason)`` pair.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from grape.errors import GrapeError
from grape.verification.verdict import Verdict, Verifier


def user_verifier(spec: str) -> Verifier:
    """Import ``module:function`` (the current directory is on the path, as for ``python -m``)."""
    module_name, sep, function_name = spec.partition(":")
    if not sep or not module_name or not function_name:
        raise GrapeError(f"--verifier python:{spec}: expected python:module:function")
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise GrapeError(f"--verifier python:{spec}: cannot import '{module_name}' ({exc})") from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise GrapeError(f"--verifier python:{spec}: '{module_name}' has no function '{function_name}'")

    def verify_user(response_text: str, item: dict[str, Any]) -> Verdict:
        return as_verdict(function(response_text, item), f"{module_name}.{function_name}")

    return verify_user


def as_verdict(result: Any, name: str) -> Verdict:
    """Accept the return shapes a user function may reasonably have."""
    if isinstance(result, Verdict):
        return result
    if result is None or isinstance(result, bool):
        return Verdict(result, name)
    if isinstance(result, tuple) and len(result) == 2 and (result[0] is None or isinstance(result[0], bool)):
        return Verdict(result[0], str(result[1]))
    raise GrapeError(f"verifier {name} returned {result!r}: return a Verdict, a bool/None or (bool, reason)")
