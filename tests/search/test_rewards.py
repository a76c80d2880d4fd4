"""The fast reward (agreement with the gold call) and the terminal rewards, on hand cases."""

import pytest

from grape.search.rewards import fast_reward, gold_words, irm_reward, overlap, text_overlap, verifier_reward, words

ANSWER = [{"get_weather": {"city": ["Paris", "paris"], "unit": ["celsius", ""]}}]
TOOLS = [
    {"name": "get_weather", "description": "Weather", "parameters": {"type": "dict", "properties": {
        "city": {"type": "string"}, "unit": {"type": "string"}}, "required": ["city"]}},
    {"name": "get_time", "description": "Time", "parameters": {"type": "dict", "properties": {
        "city": {"type": "string"}}, "required": ["city"]}},
]  # fmt: skip
ROW = {"id": "q", "answer": ANSWER, "tools": TOOLS}


def test_gold_words_are_names_arguments_and_every_accepted_value_without_case():
    assert gold_words(ANSWER) == {"get_weather", "city", "paris", "unit", "celsius"}
    assert gold_words([{"f": {"xs": [[1, 2.5]], "d": [{"k": ["New York"]}]}}]) == {"f", "xs", "1", "2", "5", "d",
                                                                                   "k", "new", "york"}  # fmt: skip
    assert gold_words([]) == set()
    assert words("get_weather(city='Paris',") == {"get_weather", "city", "paris"}


def test_overlap_is_the_shared_share_of_the_smaller_set():
    assert overlap({"a", "b"}, {"a", "b", "c"}) == 1.0
    assert overlap({"a", "x"}, {"a", "b", "c"}) == 0.5
    assert overlap(set(), {"a"}) is None
    assert text_overlap("')", "')") == 1.0 and text_overlap("')", ")") == 0.0  # no words: equal or not
    assert text_overlap("f(city='Paris')", "f(city='London')") == pytest.approx(2 / 3)


@pytest.mark.parametrize(
    ("step", "partial", "answer", "expected"),
    [
        ("get_weather(city=", "get_weather(city=", ANSWER, 0.1 + 1.0 - 0.5),  # a call, all its words gold
        ("get_time(city=", "get_time(city=", ANSWER, 0.1 + 0.5 - 0.5),  # a call; get_time is no gold word
        ("'London')", "get_weather(city='London')", ANSWER, 0.1 + 0.0 - 0.5),
        ("'Paris', unit=", "get_weather(city='Paris', unit=", ANSWER, 0.1 + 1.0 - 0.5),
        ("I cannot", "I cannot", ANSWER, -0.1 + 0.0 - 0.5),  # no call yet where one is due
        ("')", "get_weather(city='Paris')", ANSWER, 0.1),  # no word: no overlap term
        ("None fits.", "None fits.", [], 0.1),  # no call where none is right; the gold has no words
        ("get_time(", "get_time(", [], -0.1),  # a call where none is right
    ],
)
def test_fast_reward_hand_cases(step, partial, answer, expected):
    assert fast_reward(step, partial, answer, gold_words(answer)) == pytest.approx(expected)


def test_terminal_rewards_from_the_tool_call_judgement():
    assert verifier_reward("get_weather(city='paris')", ROW) == 1.0
    assert verifier_reward("get_weather(city='Rome')", ROW) == -1.0
    assert verifier_reward("get_weather(city=", ROW) == -1.0  # unparsable
    assert verifier_reward("anything", {"answer": None}) == 0.0  # nothing to judge against
    assert irm_reward("get_weather(city='Paris')", ROW) == 1.0
    assert irm_reward("get_weather(city='Rome')", ROW) == -0.25  # right names, a wrong value
    assert irm_reward("get_time(city='Paris')", ROW) == -1.5  # wrong tool
