"""The `number` verifier: answer extraction and exact numeric comparison (its agreement with human labels is
measured beside the `math` verifier's, in test_math_answer.py)."""

from __future__ import annotations

from fractions import Fraction

import pytest

from grape.verification import Verdict, get_verifier
from grape.verification.answer_text import last_boxed
from grape.verification.number_answer import final_answer, gold_number

verify_number = get_verifier("number")


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
        ("\\boxed{\\dfrac12}", "0.5", True),
        ("The answer is -3.", "#### -3", True),
        ("The answer is 3.", "#### -3", False),
        ("The answer is 50%", "50", True),
        ("The answer is 26.", "18", False),
        ("I do not know.", "18", False),
    ],
)
def test_numeric_comparison(response, gold, correct):
    assert verify_number(response, {"answer": gold}).correct is correct


def test_no_gold_answer_is_unknown_not_false():
    assert verify_number("The answer is 4", {"prompt": "2+2?"}) == Verdict(None, "no gold answer")


@pytest.mark.parametrize(
    ("gold", "value"),
    [
        ("18", 18),
        ("$1,000", 1000),
        ("-2.5", Fraction(-5, 2)),
        ("3/4", Fraction(3, 4)),
        ("\\frac{3}{4}", Fraction(3, 4)),
        ("50\\%", 50),
        ("Janet sells 9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18\n#### 18", 18),
        ("so she has 9.\nA: 9", 9),
        ("\\sqrt{2}", None),
        ("2x+1", None),
        ("\\frac{\\pi}{2}", None),
        ("(1, 2]", None),
        ("2, 3", None),
        ("1.5e3", None),
    ],
)
def test_gold_number_reads_plain_numbers_only(gold, value):
    assert gold_number(gold) == (Fraction(value) if value is not None else None)


@pytest.mark.parametrize("gold", ["\\sqrt{2}", "\\frac{\\pi}{2}", "2x+1", "\\{1, 2\\}"])
def test_a_gold_that_is_not_a_plain_number_is_unknown(gold):
    """Digits read out of an expression prove nothing: "The answer is 2" against \\sqrt{2} is not judged."""
    verdict = verify_number("The answer is 2", {"answer": gold})
    assert verdict.correct is None
    assert verdict.reason.startswith("the gold answer is not a plain number")


def test_reason_names_both_answers():
    verdict = verify_number("so 45 - 18 = 20 marbles", {"answer": "27"})
    assert verdict == Verdict(False, "wrong answer: 20 (last number) != gold 27")


def test_last_boxed_balances_braces():
    assert last_boxed("\\boxed{1} then \\boxed{\\frac{1}{2}}") == "\\frac{1}{2}"
    assert last_boxed("\\boxed{unclosed") is None


@pytest.mark.parametrize(
    ("response", "gold", "correct", "reason"),
    [
        ("So he has 82 cards.", "82", False, "no final answer found"),  # `number` would read 82 and say right
        ("So he has 23 apples left.", "82", False, "no final answer found"),  # `number`: wrong, ReFT's 0.1
        ("64 + 18 = 82. Therefore, the answer is <82>.", "82", True, None),  # SVAMP's gold format
        ("64 + 18 = 82. The answer is 81.", "82", False, "wrong answer"),
        ("#### 82", "82", True, None),
        ("\\boxed{82}", "82", True, None),
        ("No numbers here.", "82", False, "no final answer found"),
    ],
)
def test_number_stated_reads_only_a_stated_answer(response, gold, correct, reason):
    verdict = get_verifier("number-stated")(response, {"answer": gold})
    assert verdict.correct is correct
    assert reason is None or verdict.reason.startswith(reason)
    lenient = get_verifier("number")(response, {"answer": gold})
    assert lenient.correct is correct or "answer" not in response.lower()  # they differ only without a statement


def test_number_stated_gives_reft_its_zero_reward_for_an_unstated_answer():
    from grape.rl.reward import reward_function

    item = {"answer": "82"}
    assert reward_function("number")("So he has 23 apples left.", item).value == pytest.approx(0.1)
    assert reward_function("number-stated")("So he has 23 apples left.", item).value == 0.0
    assert reward_function("number-stated")("The answer is 23.", item).value == pytest.approx(0.1)
    assert reward_function("number-stated")("The answer is 82.", item).value == 1.0
