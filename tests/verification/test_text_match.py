"""The `exact`, `regex:PATTERN` and `python:module:function` verifiers, and the registry."""

from __future__ import annotations

import pytest

from grape.errors import GrapeError
from grape.verification import NAMES, Verdict, get_verifier


def test_exact_ignores_case_spacing_and_a_final_stop():
    exact = get_verifier("exact")
    assert exact("  The  Pacific Ocean. ", {"answer": "the pacific ocean"}).correct is True
    assert exact("The Atlantic", {"answer": "the pacific ocean"}).correct is False
    assert exact("anything", {}).correct is None


def test_regex_without_an_answer_group_only_needs_a_match():
    verifier = get_verifier(r"regex:^def \w+\(")
    assert verifier("Here:\ndef f(x):\n    return x", {}).correct is True
    assert verifier("lambda x: x", {}).correct is False


def test_regex_answer_group_must_equal_the_gold_answer():
    verifier = get_verifier(r"regex:Final answer: (?P<answer>[A-D])")
    assert verifier("Reasoning... Final answer: B", {"answer": "b"}).correct is True
    verdict = verifier("Final answer: C", {"answer": "B"})
    assert verdict == Verdict(False, "'C' != gold 'B'")
    assert verifier("No idea.", {"answer": "B"}) == Verdict(False, "no match: /Final answer: (?P<answer>[A-D])/")


def test_invalid_regex_is_a_user_error():
    with pytest.raises(GrapeError, match="invalid regular expression"):
        get_verifier("regex:(unclosed")


def test_python_verifier_imports_a_user_function(tmp_path, monkeypatch):
    (tmp_path / "my_checks.py").write_text(
        "def shouty(text, item):\n    return text.isupper(), 'all caps' if text.isupper() else 'not all caps'\n"
        "def wrong(text, item):\n    return 'yes'\n"
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    shouty = get_verifier("python:my_checks:shouty")
    assert shouty("HELLO", {}) == Verdict(True, "all caps")
    assert shouty("Hello", {}) == Verdict(False, "not all caps")
    with pytest.raises(GrapeError, match="returned 'yes'"):
        get_verifier("python:my_checks:wrong")("x", {})
    with pytest.raises(GrapeError, match="has no function 'missing'"):
        get_verifier("python:my_checks:missing")
    with pytest.raises(GrapeError, match="cannot import"):
        get_verifier("python:no_such_module_xyz:f")


def test_unknown_names_and_options_are_user_errors():
    with pytest.raises(GrapeError, match="unknown verifier"):
        get_verifier("nope")
    with pytest.raises(GrapeError, match="takes no options"):
        get_verifier("math", timeout_s=3)
    assert "math" in NAMES
