"""The `math` verifier (math-verify): expressions, not digits; where the answer is; agreement with human labels."""

from __future__ import annotations

import importlib.util
import json
import time

import pytest
from shared_data import shared_file

from grape.errors import GrapeError
from grape.verification import Verdict, get_verifier
from grape.verification.math_answer import Answer, answer_of

pytest.importorskip("math_verify", reason="the math verifier needs math-verify: pip install 'math-verify[antlr4_13_2]'")


@pytest.fixture(scope="module")
def verify_math():
    verifier = get_verifier("math")
    yield verifier
    verifier.close()


CASES = [
    # The four verdicts the issue found wrong when `math` read digits.
    ("\\boxed{2x+1}", "2x+1", True),
    ("\\boxed{2}", "\\frac{\\pi}{2}", False),
    ("The answer is 2", "\\sqrt{2}", False),
    ("\\boxed{\\dfrac12}", "0.5", True),
    # Fractions and \dfrac.
    ("The answer is 3/4.", "\\frac{3}{4}", True),
    ("\\boxed{\\frac{6}{8}}", "0.75", True),
    ("The answer is 0.33", "\\frac13", False),
    ("\\boxed{\\tfrac{2}{3}}", "2/3", True),
    ("So $\\dfrac{1}{4}$ of the cake is left", "0.25", True),
    # Sets and intervals.
    ("\\boxed{\\{3, 1, 2\\}}", "\\{1,2,3\\}", True),
    ("\\boxed{\\{1, 2\\}}", "\\{1,2,3\\}", False),
    ("\\boxed{(1, 2]}", "(1,2]", True),
    ("\\boxed{[1, 2]}", "(1,2]", False),
    ("The answer is (-\\infty, 3).", "(-\\infty,3)", True),
    # Percentages: math-verify reads 50% as 50 against an integer gold, as 0.5 against a decimal one.
    ("\\boxed{50\\%}", "50", True),
    ("\\boxed{50\\%}", "0.5", True),
    ("The answer is 25%.", "25", True),
    ("The answer is 25%.", "30", False),
    ("The answer is <6%>.", "6.0", True),
    # Negative numbers (a Unicode minus too).
    ("\\boxed{-3}", "-3", True),
    ("\\boxed{3}", "-3", False),
    ("The answer is −7.", "-7", True),
    # Units and currency.
    ("\\boxed{5\\text{ cm}}", "5", True),
    ("\\boxed{12\\,\\mathrm{m}}", "12", True),
    ("The answer is 18 dollars.", "18", True),
    ("The answer is $1,000.50.", "1000.5", True),
    # Thousands separators.
    ("\\boxed{1,000}", "1000", True),
    ("#### 1,234,567", "1234567", True),
    ("The answer is 1,001", "1000", False),
    # Several boxed answers are one answer, a set: right for a two-part answer, and hedging is not credited.
    ("\\boxed{2} and \\boxed{3}", "2, 3", True),
    ("\\boxed{2} and \\boxed{3}", "3", False),
    ("First \\boxed{4}, then on reflection \\boxed{5}", "5", False),
    # Expressions compare symbolically; an assignment by its value.
    ("\\boxed{x^2+2x+1}", "(x+1)^2", True),
    ("The answer is $2\\sqrt{2}$.", "\\sqrt{8}", True),
    ("The answer is 2x + 1", "1+2x", True),
    ("The answer is x + 1", "x+2", False),
    ("\\boxed{x = 5}", "5", True),
    ("The final answer is $\\boxed{\\pi}$. I hope it is correct.", "\\pi", True),
    # GSM8K-style solutions and golds: ####, "A:", "the answer is", else the last number.
    ("She makes $18.\nA: 18", "Janet sells 9.\nShe makes 9 * 2 = $<<9*2=18>>18\n#### 18", True),
    ("The answer is 5 * 24 = 120. In total 120 pencils, 3 boxes", "120", True),
    ("The answer is 5 * 24 = 121. In total", "120", False),
    ("The answer is **42**.", "42", True),
    ("The answer is <203>.", "203.0", True),
    ("so 45 - 18 = 20 marbles", "27", False),
    ("The answer is 4", "The answer is \\boxed{4}", True),
]


@pytest.mark.parametrize(("response", "gold", "correct"), CASES)
def test_judges_expressions(verify_math, response, gold, correct):
    verdict = verify_math(response, {"answer": gold})
    assert verdict.correct is correct, verdict.reason


@pytest.mark.parametrize(
    ("text", "answer"),
    [
        ("so \\boxed{2x+1}. The answer is 3", Answer("text", "so \\boxed{2x+1}. The answer is 3", "boxed")),
        ("3 + 4 = <<3+4=7>>7\n#### 7", Answer("latex", "7", "####")),
        ("The answer is 12 * 7 = 84. So she", Answer("latex", "12 * 7 = 84", "stated")),
        ("Answer: $\\frac{1}{2}$.", Answer("text", "$\\frac{1}{2}$", "stated")),
        ("The answer is \\$1,000.", Answer("latex", "1,000", "stated")),
        ("The answer is 18 dollars", Answer("text", "18 dollars", "stated")),
        ("The answer is 5\\text{ apples}", Answer("latex", "5\\text{ apples}", "stated")),
        ("The answer is <9>.", Answer("latex", "9", "stated")),
        ("The answer is 8.0", Answer("latex", "8", "stated")),
        ("\\frac{\\pi}{2}", Answer("latex", "\\frac{\\pi}{2}", "whole text")),
        ("(1, 2]", Answer("latex", "(1, 2]", "whole text")),
        ("so 45 - 18 = 20 marbles", Answer("text", "so 45 - 18 = 20 marbles", "whole text")),
    ],
)
def test_answer_of_finds_the_answer_and_how_to_read_it(text, answer):
    assert answer_of(text) == answer


def test_unknown_when_there_is_no_gold_or_it_cannot_be_read(verify_math):
    assert verify_math("The answer is 4", {"prompt": "2+2?"}) == Verdict(None, "no gold answer")
    assert verify_math("The answer is 4", {"answer": "banana"}) == Verdict(None, "cannot read the gold answer 'banana'")


def test_no_final_answer_is_incorrect(verify_math):
    assert verify_math("I do not know.", {"answer": "18"}) == Verdict(False, "no final answer found")


def test_reason_names_what_was_compared(verify_math):
    assert verify_math("\\boxed{\\dfrac12}", {"answer": "0.5"}) == Verdict(
        True, "right answer: \\frac{1}{2} (boxed) == gold 0.5"
    )
    assert verify_math("so 45 - 18 = 20 marbles", {"answer": "27"}) == Verdict(
        False, "wrong answer: 20 (whole text) != gold 27"
    )


def test_without_math_verify_the_error_says_what_to_install(monkeypatch):
    find_spec = importlib.util.find_spec
    absent = lambda name, *rest: None if name == "math_verify" else find_spec(name, *rest)  # noqa: E731
    monkeypatch.setattr(importlib.util, "find_spec", absent)
    with pytest.raises(GrapeError, match=r"needs math-verify: pip install 'math-verify\[antlr4_13_2\]'"):
        get_verifier("math")


def _human_label_agreement(verifier) -> tuple[int, int, int, float]:
    """(agree, total, unknown, seconds) over 5,276 GSM8K model solutions with a person's is_correct label."""
    path = shared_file("gsm8k/example_model_solutions.jsonl")
    problems = [json.loads(line) for line in path.read_text().splitlines()]
    total = agree = unknown = 0
    started = time.perf_counter()
    for problem in problems:
        for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            solution = problem[key]
            verdict = verifier(solution["solution"], {"answer": problem["ground_truth"]})
            total += 1
            agree += verdict.correct == solution["is_correct"]
            unknown += verdict.correct is None
    return agree, total, unknown, time.perf_counter() - started


@pytest.mark.parametrize("name", ["math", "number"])
def test_agrees_with_human_labels_on_gsm8k_model_solutions(name):
    verifier = get_verifier(name)
    try:
        agree, total, unknown, seconds = _human_label_agreement(verifier)
    finally:
        getattr(verifier, "close", lambda: None)()
    print(f"\n{name} verifier vs human is_correct labels: {agree}/{total} = {agree / total:.4%}, "
          f"{unknown} unknown, {1e3 * seconds / total:.2f} ms per check")  # fmt: skip
    assert total == 5276
    assert agree / total >= 0.999
