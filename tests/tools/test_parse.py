"""Reading calls from text: Python and JSON forms, the values, the spans, and that nothing runs."""

import json

from grape.tools.calls import ToolCall
from grape.tools.parse import parse_calls


def _spans(text, parsed):
    return [(text[s.name[0] : s.name[1]], [text[a:b] for a, b in s.values]) for s in parsed.spans]


def test_python_calls_in_every_accepted_layout():
    one = "get_weather(city='Paris')"
    assert parse_calls(one).calls == [ToolCall("get_weather", {"city": "Paris"})]
    expected = [ToolCall("math.factorial", {"number": 5}), ToolCall("get_time", {"tz": "UTC"})]
    lines = "math.factorial(number=5)\nget_time(tz='UTC')"
    for text in (lines, "[math.factorial(number=5), get_time(tz='UTC')]", "math.factorial(number=5),get_time(tz='UTC')",
                 f"```python\n{lines}\n```", "  \n[math.factorial(number=5),\n get_time(tz='UTC')]\n"):  # fmt: skip
        parsed = parse_calls(text)
        assert parsed.error is None and parsed.calls == expected, text


def test_python_values_are_literals_and_never_evaluated(tmp_path):
    target = tmp_path / "made"
    text = (f"f(a=-3.5, b=[1, 'x'], c={{'k': (1, 2)}}, d=True, e=None, g=some_variable, "
            f"h=2*3, i=open({str(target)!r}, 'w'), j=math.pi)")  # fmt: skip
    (call,) = parse_calls(text).calls
    assert call.arguments == {"a": -3.5, "b": [1, "x"], "c": {"k": (1, 2)}, "d": True, "e": None,
                              "g": "some_variable", "h": "2 * 3", "i": f"open({str(target)!r}, 'w')",
                              "j": "math.pi"}  # fmt: skip
    assert not target.exists()


def test_positional_arguments_are_kept_apart():
    (call,) = parse_calls("sort('final_report.pdf', reverse=True)").calls
    assert call == ToolCall("sort", {"reverse": True}, ("final_report.pdf",))


def test_json_calls():
    expected = [ToolCall("get_weather", {"city": "Paris", "days": 3})]
    arguments = '{"city": "Paris", "days": 3}'
    for text in (f'{{"name": "get_weather", "arguments": {arguments}}}',
                 f'{{"name": "get_weather", "parameters": {arguments}}}',
                 json.dumps([{"type": "function", "function": {"name": "get_weather", "arguments": arguments}}]),
                 f'<tool_call>\n{{"name": "get_weather", "arguments": {arguments}}}\n</tool_call>'):  # fmt: skip
        parsed = parse_calls(text)
        assert parsed.error is None and parsed.calls == expected, text
    two = '<tool_call>{"name": "a", "arguments": {}}</tool_call>\n<tool_call>{"name": "b", "arguments": {}}</tool_call>'
    assert [c.name for c in parse_calls(two).calls] == ["a", "b"]


def test_spans_point_at_names_and_values_in_the_original_text():
    text = "\n```\nget_weather(city='Paris', unit=\"C\")\nget_time(tz=-1)\n```"
    assert _spans(text, parse_calls(text)) == [("get_weather", ["'Paris'", '"C"']), ("get_time", ["-1"])]
    text = '  [{"name": "get_weather", "arguments": {"city": "Paris", "n": [1, 2]}}]'
    assert _spans(text, parse_calls(text)) == [("get_weather", ['"Paris"', "[1, 2]"])]
    text = "f(é='été', b=2)"  # ast counts UTF-8 bytes; the spans count characters
    assert _spans(text, parse_calls(text)) == [("f", ["'été'", "2"])]


def test_text_that_is_not_calls_says_why():
    cases = {
        "": "empty text",
        "I cannot help with that.": "not a call: invalid syntax",
        "x = f(a=1)": "not a call: an Assign statement",
        "[1, 2]": "not a call: 1",
        "f(*args)": "not a call: f unpacks arguments",
        "f(a=1, a=2)": "not a call: f repeats a keyword argument",
        "[]": "no call in the text",
        "Sure:\n```\nf(a=1)\n```": "not a call: invalid syntax",  # the calls are the whole text, as in BFCL
        '{"a": 1}': 'not a call: a JSON call is {"name": ..., "arguments": {...}}',
        '{"name": "f", "arguments": {"a": 1}} trailing': "not a call: malformed JSON",
    }
    for text, reason in cases.items():
        parsed = parse_calls(text)
        assert parsed.calls == [] and parsed.error is not None and parsed.error.startswith(reason), (text, parsed.error)
