"""The `math` verifier: answer extraction and numeric comparison, and agreement with human labels."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from shared_data import shared_file

from grape.verification import Verdict, get_verifier
from grape.verification.math_answer import final_answer, last_boxed

verify_math = get_verifier("math")


@pytest.mark.parametrize(
    ("text", "value", "where"),
    [
        ("She has 3 + 4 = <<3+4=7>>7 apples.\n#### 7", 7, "####"),
        ("so x = 2 and \\boxed{\\frac{3}{4}} is it", Fraction(3, 4), "boxed"),
        ("\\boxed{1,250}", 1250, "boxed"),
        ("First 12, then 30. The answer is $1,000.50.", Fraction(200100, 200), "stated"),
        ("The final answer is: -5 degrees", -5, "stated"),
        ("The answer is 5 * 24 = 120. In total 120 pencils, 3 boxes", 120, "stated"),
        ("Step 1: 6 * 2 = 12\nA: 12", 12, "stated"),
        ("It costs 5 dollars for 3 of them, 15 dollars in all", 15, "last number"),
        ("16-3=13 eggs", 13, "last number"),
        ("Answer: 2/3 of the pie", Fraction(2, 3), "stated"),
        ("no numbers here", None, ""),
    ],
)
def test_final_answer_finds_the_answer(text, value, where):
    found, place = final_answer(text)
    assert (found, place) == ((Fraction(value), where) if value is not None else (None, ""))


@pytest.mark.parametrize(
    ("response", "gold", "correct"),
    [
        ("The answer is 1,000.", "1000", True),
        ("The answer is 1000.00 dollars", "$1,000", True),
        ("The answer is 0.5", "1/2", True),
        ("That makes 7.0 hours", "#### 7", True),
        ("The answer is 18.", "Janet sells 9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18\n#### 18", True),
        ("The answer is 0.33", "1/3", False),
        ("The answer is 26.", "18", False),
        ("I do not know.", "18", False),
    ],
)
def test_numeric_comparison(response, gold, correct):
    assert verify_math(response, {"answer": gold}).correct is correct


def test_no_gold_answer_is_unknown_not_false():
    assert verify_math("The answer is 4", {"prompt": "2+2?"}) == Verdict(None, "no gold answer")


def test_reason_names_both_answers():
    verdict = verify_math("so 45 - 18 = 20 marbles", {"answer": "27"})
    assert verdict == Verdict(False, "wrong answer: 20 (last number) != gold 27")


def test_last_boxed_balances_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{unclosed") is None


def test_agrees_with_human_labels_on_gsm8k_model_solutions():
    """5,276 model solutions of GSM8K test problems, each labelled correct/incorrect by a person."""
    path = shared_file("gsm8k/example_model_solutions.jsonl")
    total = agree = 0
    for line in path.read_text().splitlines():
        problem = json.loads(line)
        for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            solution = problem[key]
            verdict = verify_math(solution["solution"], {"answer": problem["ground_truth"]})
            total += 1
            agree += verdict.correct == solution["is_correct"]
    print(f"\nmath verifier vs human is_correct labels: {agree}/{total} = {agree / total:.4%}")
    assert total == 5276
    assert agree / total >= 0.99
