"""TL-Training's error-category reward: the table's rows, their order, and the reward of real texts."""

import pytest

from grape.rl.reward import reward_function
from grape.tools.irm import irm_reward
from grape.tools.judge import (
    CALLED_WHEN_NO_CALL,
    EXTRA_CALL,
    HALLUCINATED_PARAMETER,
    HALLUCINATED_TOOL,
    MISSING_CALL,
    MISSING_PARAMETER,
    REDUNDANT_PARAMETER,
    UNPARSABLE,
    WRONG_TOOL,
    WRONG_VALUE,
    Judgement,
    unknown,
)
from grape.tools.tool_docs import Tool

H, R, M, V = HALLUCINATED_PARAMETER, REDUNDANT_PARAMETER, MISSING_PARAMETER, WRONG_VALUE


@pytest.mark.parametrize(
    ("problems", "reward"),
    [
        ({UNPARSABLE}, -2.0),
        ({HALLUCINATED_TOOL, WRONG_TOOL}, -2.0),  # the first row that applies wins
        ({WRONG_TOOL, H, R, M}, -1.5),
        ({MISSING_CALL}, -1.5),
        ({EXTRA_CALL, V}, -1.5),
        ({CALLED_WHEN_NO_CALL}, -1.5),
        ({H, R, M, V}, -1.8),
        ({H, R}, -1.3),
        ({H, M}, -1.3),
        ({R, M}, -1.0),
        ({H, V}, -0.8),
        ({R}, -0.5),
        ({M, V}, -0.5),
        ({V}, -0.25),
        (set(), 1.0),
    ],
)
def test_the_table(problems, reward):
    assert irm_reward(Judgement(not problems, {p: [] for p in problems})) == reward


def test_clipping_and_unknown():
    assert irm_reward(Judgement(False, {UNPARSABLE: []}), clip=1.0) == -1.0
    assert irm_reward(Judgement(True), clip=0.5) == 0.5
    assert irm_reward(unknown("no gold answer")) is None


def test_grape_rl_rewards_tool_calls_by_error_category():
    reward = reward_function("tool-call")
    item = {"answer": [{"get_weather": {"city": ["Paris"]}}],
            "tools": [Tool("get_weather", "", {"city": {"type": "string"}}, ("city",)).as_chat()]}  # fmt: skip
    cases = {"get_weather(city='Paris')": (1.0, "right"), "get_weather(city='Rome')": (-0.25, "wrong"),
             "get_weather(town='Paris')": (-1.3, "wrong"), "get_time()": (-2.0, "wrong"),
             "It is sunny.": (-2.0, "no_answer")}  # fmt: skip
    for text, (value, kind) in cases.items():
        got = reward(text, item)
        assert (got.value, got.kind) == (value, kind), text
    assert reward("get_weather(city='Paris')", {"answer": None}).kind == "no_answer"
