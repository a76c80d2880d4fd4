"""The pair rules at each boundary: a gap of at least 0.1, a chosen value of at least -0.3, an overlap of at
most 0.95, each bound kept; and which children make the pair."""

import pytest

from grape.search.mcts import Rollout, Search
from grape.search.pairs import (
    BLANK,
    LOW_CHOSEN,
    NO_PAIR,
    OVERLAP,
    SMALL_GAP,
    AnswerPair,
    PairRules,
    answer_pair,
    pair_problem,
    step_pairs,
)
from grape.search.tree import Node

RULES = PairRules()  # 0.1, -0.3, 0.95
WORDS = [f"w{i}" for i in range(20)]


@pytest.mark.parametrize(
    ("chosen", "rejected", "expected"),
    [
        (0.35, 0.25, None),  # a gap of 0.1 (0.0999... in floating point) is kept
        (0.35, 0.26, SMALL_GAP),
        (-0.3, -0.4, None),  # chosen exactly -0.3 is kept
        (-0.31, -0.5, LOW_CHOSEN),
        (-0.2, -0.25, SMALL_GAP),  # the gap is checked first
    ],
)
def test_value_bounds(chosen, rejected, expected):
    assert pair_problem(chosen, rejected, "get_weather(", "get_time(", RULES) == expected


def test_overlap_bound():
    nineteen_of_twenty = " ".join(WORDS), " ".join([*WORDS[:19], "other"])
    assert pair_problem(1.0, 0.0, *nineteen_of_twenty, RULES) is None  # overlap 0.95: kept
    more = WORDS + ["x", "y", "z", "v"]
    assert pair_problem(1.0, 0.0, " ".join([*more, "u"]), " ".join([*more, "t"]), RULES) == OVERLAP  # 24/25
    assert pair_problem(1.0, 0.0, "')", "')", RULES) == OVERLAP  # equal texts without words
    assert pair_problem(1.0, 0.0, "')", " ", RULES) == BLANK


def test_step_pairs_take_the_highest_and_lowest_child_of_each_node_with_two():
    root = Node()
    high = root.add("get_weather(city=", 1.0, 0.9)
    root.add("get_weather(", 1.0, 0.5)
    low = root.add("get_time(city=", 1.0, -0.2)
    only = high.add("'Paris')", 1.0, 0.6)  # a single child: no pair
    same = [only.add("x=1", 1.0, 0.3), only.add("y=2", 1.0, 0.3)]  # equal values: the gap is 0
    kept, left_out = step_pairs(root, RULES)
    assert [(p.parent, p.chosen, p.rejected) for p in kept] == [(root, high, low)]
    assert left_out == [SMALL_GAP] and same[0].value == same[1].value


def test_the_whole_answer_pair_is_the_best_against_the_worst_judged_answer():
    leaf = Node()
    rollouts = [Rollout("get_weather(city='Paris')", True, 1.0, leaf), Rollout("get_time(city='Paris')", True, -1.0,
                leaf), Rollout("get_weather(city='Rome')", True, 1.0, leaf)]  # fmt: skip
    pair = answer_pair(Search(Node(), rollouts), RULES)
    assert isinstance(pair, AnswerPair) and (pair.chosen, pair.rejected) == (rollouts[0], rollouts[1])
    assert answer_pair(Search(Node(), rollouts[:1]), RULES) == NO_PAIR
    assert answer_pair(Search(Node(), [rollouts[0], rollouts[2]]), RULES) == SMALL_GAP
