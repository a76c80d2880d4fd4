"""ReFT's reward through real verifier calls: 1 right, 0.1 answered but wrong, 0 no answer."""

import pytest

from grape.rl.reward import reft_reward, reward_function
from grape.verification.sandbox import WALLS, wall_unavailable

GSM8K_ITEM = {"answer": "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\n#### 72"}


@pytest.mark.parametrize("verifier", ["math", "number"])
@pytest.mark.parametrize(
    ("response", "value", "kind"),
    [
        ("She sold 48 + 24 = 72 clips. The answer is 72.", 1.0, "right"),
        ("So the total is \\boxed{72}", 1.0, "right"),
        ("She sold 48 + 20 = 68 clips.\n#### 68", 0.1, "wrong"),
        ("I do not know how many clips she sold.", 0.0, "no_answer"),
        ("   ", 0.0, "no_answer"),
    ],
)
def test_math_and_number_verifiers(verifier, response, value, kind):
    reward = reward_function(verifier)(response, GSM8K_ITEM)
    assert (reward.value, reward.kind) == (value, kind), reward.reason


def test_an_item_the_verifier_cannot_judge_earns_nothing():
    reward = reward_function("number")("The answer is 3.", {"answer": "\\sqrt{2}"})
    assert (reward.value, reward.kind) == (0.0, "no_answer")
    assert "not a plain number" in reward.reason
    assert reward_function("math")("The answer is 3.", {"prompt": "no gold"}).value == 0.0


def test_regex_verifier_no_match_is_no_answer_and_a_wrong_match_is_partial():
    reward = reward_function("regex:Final answer: (?P<answer>\\w+)", partial=0.25)
    item = {"answer": "yes"}
    assert reward("Final answer: yes", item).value == 1.0
    assert reward("Final answer: no", item).value == 0.25
    assert reward("maybe", item).value == 0.0


CODE_ITEM = {"tests": ["assert add(2, 3) == 5"]}
MODE = next((m for m in WALLS if not wall_unavailable(m)), "guard")


def test_code_verifier_ran_but_wrong_is_partial_timeout_and_no_code_are_zero():
    reward = reward_function("code", mode=MODE, allow_unsafe=MODE == "guard", timeout_s=2)
    assert reward("```python\ndef add(a, b):\n    return a + b\n```", CODE_ITEM).value == 1.0
    wrong = reward("```python\ndef add(a, b):\n    return a - b\n```", CODE_ITEM)
    assert (wrong.value, wrong.kind) == (0.1, "wrong")
    slow = reward("```python\nwhile True:\n    pass\n```", CODE_ITEM)
    assert (slow.value, slow.kind) == (0.0, "no_answer") and slow.reason.startswith("timeout")


def test_the_mapping_itself():
    assert reft_reward(True, "right answer").value == 1.0
    assert reft_reward(None, "math-verify took over 10s").value == 0.0
    assert reft_reward(False, "wrong answer: 3 != gold 4").value == 0.1
    assert reft_reward(False, "no final answer found").value == 0.0
