"""The judgement: right, or every problem of the best pairing of calls to gold calls."""

from grape.tools.calls import GoldCall, ToolCall, bind, read_gold
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
    judge_calls,
)
from grape.tools.parse import parse_calls
from grape.tools.tool_docs import Tool, read_tools

WEATHER = Tool("get_weather", "Weather.", {"city": {"type": "string"}, "unit": {"type": "string"},
                                           "days": {"type": "integer"}}, ("city",))  # fmt: skip
TIME = Tool("get_time", "Time.", {"tz": {"type": "string"}}, ("tz",))
TOOLS = [WEATHER, TIME]
GOLD = read_gold([{"get_weather": {"city": ["Paris"], "unit": ["celsius", ""]}}])


def _problems(text, gold=GOLD, tools=TOOLS):
    judgement = judge_calls(parse_calls(text), gold, tools)
    return judgement.correct, set(judgement.problems)


def test_right_answers():
    for text in ("get_weather(city='Paris')", "get_weather(city='paris', unit='Celsius')", "get_weather('Paris')",
                 '{"name": "get_weather", "arguments": {"city": "Paris"}}'):  # fmt: skip
        assert _problems(text) == (True, set()), text


def test_each_problem_is_named():
    cases = {
        "The weather is nice.": {UNPARSABLE},
        "get_forecast(city='Paris')": {HALLUCINATED_TOOL},
        "get_time(tz='Paris')": {WRONG_TOOL},
        "get_weather(city='Paris', country='FR')": {HALLUCINATED_PARAMETER},
        "get_weather(city='Paris', days=3)": {REDUNDANT_PARAMETER},
        "get_weather(unit='celsius')": {MISSING_PARAMETER},
        "get_weather(city='Lyon')": {WRONG_VALUE},
        "get_weather(city=75)": {WRONG_VALUE},  # the wrong type is a wrong value
        "get_weather(days=2, country='FR')": {MISSING_PARAMETER, REDUNDANT_PARAMETER, HALLUCINATED_PARAMETER},
        "get_weather('Paris', 'celsius', 3, 4)": {REDUNDANT_PARAMETER, HALLUCINATED_PARAMETER},  # days; #3 unbound
        "get_weather('Paris', city='Paris')": {HALLUCINATED_PARAMETER},  # city given twice
        "get_weather(city='Paris')\nget_time(tz='UTC')": {EXTRA_CALL},
    }
    for text, problems in cases.items():
        assert _problems(text) == (False, problems), text


def test_an_optional_gold_argument_may_be_left_out_but_not_a_non_optional_one():
    gold = read_gold([{"get_weather": {"city": ["Paris"], "unit": ["celsius"]}}])
    assert _problems("get_weather(city='Paris')", gold) == (False, {MISSING_PARAMETER})
    assert _problems("get_weather(city='Paris', unit='celsius')", gold) == (True, set())


def test_parallel_calls_match_in_any_order_and_count():
    gold = read_gold([{"get_weather": {"city": ["Paris"]}}, {"get_weather": {"city": ["Rome"]}},
                      {"get_time": {"tz": ["CET"]}}])  # fmt: skip
    assert _problems("get_time(tz='CET')\nget_weather(city='Rome')\nget_weather(city='Paris')", gold) == (True, set())
    assert _problems("get_weather(city='Rome')\nget_weather(city='Paris')", gold) == (False, {MISSING_CALL})
    # the best pairing: Paris and Rome matched, the third call is only a wrong value against CET
    assert _problems("get_weather(city='Rome')\nget_weather(city='Paris')\nget_time(tz='UTC')", gold) == (
        False, {WRONG_VALUE})  # fmt: skip


def test_the_best_pairing_is_found_where_a_greedy_one_fails():
    """Call 0 fits both gold calls, call 1 only the first: pairing gold 0 with call 0 first would fail."""
    gold = [GoldCall("f", {"a": [1, 2]}), GoldCall("f", {"a": [1]})]
    assert _problems("f(a=1)\nf(a=2)", gold, []) == (True, set())


def test_no_call_right():
    assert _problems("Sorry, none of these tools can do that.", []) == (True, set())
    assert _problems("get_weather(city=", []) == (True, set())  # unreadable is no call, as in BFCL
    assert _problems("get_time(tz='UTC')", []) == (False, {CALLED_WHEN_NO_CALL})


def test_without_tool_documentation_the_gold_is_all_there_is():
    assert _problems("f(a=1)", read_gold([{"f": {"a": [1]}}]), []) == (True, set())
    assert _problems("g(a=1)", read_gold([{"f": {"a": [1]}}]), []) == (False, {WRONG_TOOL})
    assert _problems("f(a=1, b=2)", read_gold([{"f": {"a": [1]}}]), []) == (False, {HALLUCINATED_PARAMETER})


def test_reasons_name_the_categories_first():
    judgement = judge_calls(parse_calls("get_weather(days=2)"), GOLD, TOOLS)
    assert judgement.reason == ("redundant parameter + missing parameter: redundant parameter get_weather.days; "
                                "missing parameter get_weather.city")  # fmt: skip
    assert judge_calls(parse_calls("get_weather(city='Paris')"), GOLD, TOOLS).reason == "right"


def test_gold_from_chat_tool_calls_and_tools_from_the_chat_format():
    gold = read_gold([{"type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}])
    tools = read_tools([WEATHER.as_chat(), TIME.as_chat()])
    assert tools == TOOLS
    assert _problems("get_weather(city='Paris')", gold, tools) == (True, set())
    assert _problems("get_weather(city='Paris', unit='celsius')", gold, tools) == (False, {REDUNDANT_PARAMETER})


def test_positional_arguments_bind_in_the_signature_order():
    tool = Tool("t", "", {"b": {"type": "string"}, "a": {"type": "string"}}, ("a",))  # required first: a, then b
    assert tool.parameter_names == ["a", "b"]
    assert bind(ToolCall("t", {"b": "2"}, ("1",)), tool) == ({"a": "1", "b": "2"}, [])
    assert bind(ToolCall("t", {}, ("1", "2", "3")), tool) == ({"a": "1", "b": "2"}, ["#2"])
    assert bind(ToolCall("t", {}, ("1",)), None) == ({}, ["#0"])
