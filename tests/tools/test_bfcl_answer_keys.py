"""The `tool-call` verifier against BFCL's own answer keys, every category in ../shared/data/bfcl.

For every question: the answer key's first accepted values written as calls are right (but for 4 questions
whose key no answer satisfies under BFCL's own rules), so are the same calls as JSON and in reverse order;
and hand-made wrong answers get the category that says what is wrong with them.
"""

from __future__ import annotations

import json

import pytest
from shared_data import shared_file

from grape.tools.bfcl import Trajectory, bfcl_entries, read_answers
from grape.tools.calls import ToolCall
from grape.tools.clean_turns import split_turns
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
)
from grape.tools.render import call_text
from grape.tools.verifier import judge

CATEGORIES = ("simple_python", "multiple", "parallel", "parallel_multiple", "live_simple", "live_multiple",
              "live_parallel", "live_parallel_multiple", "multi_turn_base")  # fmt: skip
# Keys that no answer satisfies under BFCL's own rules: an argument whose accepted list is empty
# (live_simple_106, _112), or a non-optional argument the function does not document (live_multiple_862, _964).
UNSATISFIABLE = {"live_simple_106-63-0", "live_simple_112-68-0", "live_multiple_862-181-3", "live_multiple_964-207-0"}


def _samples(category):
    questions = shared_file(f"bfcl/BFCL_v4_{category}.json")
    answers = questions.parent / "possible_answer" / questions.name
    out = []
    for entry in bfcl_entries(questions, read_answers(answers) if answers.is_file() else None):
        out += split_turns(entry.id, entry.messages, entry.tools, [])[0] if isinstance(entry, Trajectory) else [entry]
    return out


def _verdict(text, sample):
    judgement = judge(text, {"answer": sample.gold, "tools": [t.as_chat() for t in sample.tools]})
    return judgement.correct, set(judgement.problems)


def _json_text(calls):
    return json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls])


def _changed(value):
    """A value no answer key accepts, of the same kind."""
    if isinstance(value, bool):
        return "maybe"
    if isinstance(value, (int, float)):
        return value + 1000.5
    if isinstance(value, str):
        return value + " zzz9"
    return [*value, "zzz9"] if isinstance(value, list) else "zzz9"


@pytest.mark.parametrize("category", CATEGORIES)
def test_right_answers_are_right(category):
    samples = [s for s in _samples(category) if s.gold]
    assert samples
    wrong = {s.id: _verdict(call_text(s.target), s) for s in samples}
    wrong = {k: v for k, v in wrong.items() if v[0] is not True}
    assert set(wrong) == UNSATISFIABLE & {s.id for s in samples}, list(wrong.items())[:3]
    for sample in samples:
        if sample.id in UNSATISFIABLE:
            continue
        assert _verdict(_json_text(sample.target), sample) == (True, set()), sample.id
        assert _verdict(call_text(sample.target[::-1]), sample) == (True, set()), sample.id  # any order


def _in_every_call(calls, change):
    """The calls with ``change`` made in each call where it can be made (None: in none)."""
    changed = [change(c) or c for c in calls]
    return changed if changed != calls else None


def _mistakes(sample):
    """(the problem, the calls that make it) for each mistake this question allows. A parameter mistake is
    made in every call where it can be, so that the best pairing of calls cannot move it to another call."""
    calls: list[ToolCall] = sample.target
    tools = {t.name: t for t in sample.tools}
    expected: dict[str, set] = {}
    for gold in sample.gold:
        ((name, accepted),) = gold.items()
        expected.setdefault(name, set()).update(accepted)
    first, rest = calls[0], calls[1:]
    others = [name for name in tools if name not in expected]
    spare = {c.name: [p for p in tools[c.name].properties if p not in expected[c.name]] for c in calls}
    needed = {c.name: [p for p in c.arguments if p in tools[c.name].required] for c in calls}
    mistakes = [
        (HALLUCINATED_TOOL, [ToolCall(first.name + "_v2", first.arguments), *rest]),
        (WRONG_TOOL, [ToolCall(others[0], first.arguments), *rest] if others else None),
        (HALLUCINATED_PARAMETER, _in_every_call(calls, lambda c: ToolCall(c.name, {**c.arguments, "zz_x": 1}))),
        (REDUNDANT_PARAMETER, _in_every_call(
            calls, lambda c: spare[c.name] and ToolCall(c.name, {**c.arguments, spare[c.name][0]: "x"}))),
        (MISSING_PARAMETER, _in_every_call(
            calls, lambda c: needed[c.name] and ToolCall(c.name, {k: v for k, v in c.arguments.items()
                                                                  if k != needed[c.name][0]}))),
        (WRONG_VALUE, _in_every_call(
            calls, lambda c: c.arguments and ToolCall(c.name, {k: _changed(v) for k, v in c.arguments.items()}))),
        (MISSING_CALL, calls[:-1] if rest else None),
        (EXTRA_CALL, [*calls, ToolCall(first.name + "_v2", first.arguments)]),
    ]  # fmt: skip
    return [(problem, changed) for problem, changed in mistakes if changed is not None]


@pytest.mark.parametrize("category", CATEGORIES)
def test_wrong_answers_say_what_is_wrong(category):
    seen = set()
    for sample in _samples(category):
        if not sample.gold or sample.id in UNSATISFIABLE:
            continue
        assert _verdict(f"I would call {sample.target[0].name} for this.", sample) == (False, {UNPARSABLE})
        for problem, calls in _mistakes(sample):
            text = call_text(calls)
            assert _verdict(text, sample) == (False, {problem}), (sample.id, text)
            seen.add(problem)
    assert {HALLUCINATED_TOOL, HALLUCINATED_PARAMETER, WRONG_VALUE, MISSING_PARAMETER, EXTRA_CALL} <= seen, seen
    if "multiple" in category or category == "multi_turn_base":
        assert WRONG_TOOL in seen
    if "parallel" in category or category == "multi_turn_base":
        assert MISSING_CALL in seen
    # elsewhere BFCL's keys list every documented parameter: no documented one is left to give in excess
    if category in ("parallel_multiple", "live_multiple", "live_parallel", "multi_turn_base"):
        assert REDUNDANT_PARAMETER in seen


@pytest.mark.parametrize("category", ["irrelevance", "live_irrelevance"])
def test_where_no_call_is_right(category):
    samples = _samples(category)
    assert samples and all(s.gold == [] for s in samples)
    for sample in samples:
        name = sample.tools[0].name if sample.tools else "search"
        assert _verdict("None of these functions fits the request.", sample) == (True, set())
        assert _verdict(f"{name}()", sample) == (False, {CALLED_WHEN_NO_CALL})


def test_live_relevance_has_no_answer_key():
    for sample in _samples("live_relevance"):
        assert sample.gold is None and judge("f()", {"answer": sample.gold}).correct is None
