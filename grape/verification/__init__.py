"""Verify candidate responses: is the final answer right, do the tests pass?

``get_verifier(name)`` returns a callable ``(response_text, item) -> Verdict(correct, reason)``.
"""

from grape.verification.registry import NAMES, get_verifier
from grape.verification.verdict import Verdict, Verifier

__all__ = ["NAMES", "Verdict", "Verifier", "get_verifier"]
