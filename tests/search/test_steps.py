"""The splitter: cut at ". ", ", ", "=", "(", a separator's trailing space starting the next fragment, two
fragments a step, and nothing added or lost."""

import pytest

from grape.search.steps import split_fragments, split_steps, step_spans


def test_a_call_splits_at_its_parenthesis_and_equals_signs():
    text = "get_weather(city='Paris', unit='c')"
    assert split_fragments(text) == ["get_weather(", "city=", "'Paris',", " unit=", "'c')"]
    assert split_steps(text) == ["get_weather(city=", "'Paris', unit=", "'c')"]


def test_sentences_and_clauses_keep_their_space_for_the_next_step():
    text = "I will check. Then, weather(x=1)"
    assert split_fragments(text) == ["I will check.", " Then,", " weather(", "x=", "1)"]
    assert split_steps(text, per_step=1) == split_fragments(text)
    assert split_steps(text, per_step=3) == ["I will check. Then, weather(", "x=1)"]
    assert not any(step.endswith(" ") for step in split_steps(text))  # no partial answer ends in a space


@pytest.mark.parametrize(
    "text",
    ["", "no separator at all", "(", "==", "a=b", "f(a=1)\ng(b=2)", ". , = (", "x. ", "a,  b", "f(g(h=1))"],
)
def test_the_steps_joined_are_the_text_and_none_is_empty(text):
    for per_step in (1, 2, 3):
        steps = split_steps(text, per_step=per_step)
        assert "".join(steps) == text
        assert all(steps)
    fragments = split_fragments(text)
    assert "".join(fragments) == text and all(fragments)


def test_other_separators_and_an_all_space_separator():
    assert split_fragments("a;b;c", [";"]) == ["a;", "b;", "c"]
    assert split_fragments("f(a)\ng(b)", ["\n"]) == ["f(a)\n", "g(b)"]  # all whitespace: cut after it
    assert split_fragments("text", []) == ["text"]
    assert split_fragments("a, b", [", ", ","]) == ["a,", " b"]  # the longer separator first


def test_step_spans_locate_each_step():
    steps = split_steps("get_weather(city='Paris')")
    assert steps == ["get_weather(city=", "'Paris')"]
    assert step_spans(steps) == [(0, 17), (17, 25)]


def test_a_step_holds_at_least_one_fragment():
    with pytest.raises(ValueError):
        split_steps("a=b", per_step=0)
