"""TL-Training's clean turns (MAE): one sample per assistant turn, errors never a target but kept as context."""

from grape.tools.calls import ToolCall
from grape.tools.clean_turns import PAPER_ERROR_SIGNATURES, matched_signature, signature_key, split_turns
from grape.tools.tool_docs import Tool

SEARCH = Tool("search", "", {"q": {"type": "string"}}, ("q",))


def _call(q):
    return {"role": "assistant", "content": None,
            "tool_calls": [{"type": "function", "function": {"name": "search", "arguments": {"q": q}}}]}  # fmt: skip


TRAJECTORY = [
    {"role": "user", "content": "Find grape's docs."},
    _call("grape doc"),
    {"role": "tool", "content": '{"Error": "Connection-error: timed out"}'},
    _call("grape docs"),
    {"role": "tool", "content": "3 results"},
    {"role": "assistant", "content": "Here are three results."},
    {"role": "user", "content": "And the first one?"},
    {"role": "assistant", "content": "search('grape docs first')"},
]


def test_signatures_ignore_case_and_punctuation():
    assert signature_key("Invalid API-call!") == "invalidapicall"
    assert matched_signature("client error 400", ["400 Client Error"]) is None  # the words must be in order
    assert matched_signature("HTTP 400 client-error", ["400 Client Error"]) == "400 Client Error"
    # the paper's '"error":' keeps only "error" and so matches any output that says error anywhere
    assert matched_signature("No errors found.", PAPER_ERROR_SIGNATURES) == '"error":'
    assert matched_signature("3 results", PAPER_ERROR_SIGNATURES) is None


def test_one_sample_per_clean_assistant_turn():
    samples, excluded = split_turns("t", TRAJECTORY, [SEARCH], PAPER_ERROR_SIGNATURES)
    assert [(e.id, e.signature) for e in excluded] == [("t/turn1", "ConnectionError")]  # "Connection-error"
    assert [s.id for s in samples] == ["t/turn2", "t/turn3", "t/turn4"]
    second, third, fourth = samples
    assert second.context == TRAJECTORY[:3]  # the failed call and its error stay in the context
    assert second.target == [ToolCall("search", {"q": "grape docs"})]
    assert second.gold == [{"search": {"q": ["grape docs"]}}]
    assert (third.target, third.gold) == ("Here are three results.", [])  # a text answer: no call is right
    assert fourth.target == "search('grape docs first')"  # call text kept as written; its gold binds 'q'
    assert fourth.gold == [{"search": {"q": ["grape docs first"]}}]


def test_signatures_are_configurable():
    samples, excluded = split_turns("t", TRAJECTORY, [SEARCH], ["timed out"])
    assert [e.id for e in excluded] == ["t/turn1"]
    samples, excluded = split_turns("t", TRAJECTORY, [SEARCH], [])
    assert excluded == [] and len(samples) == 4
