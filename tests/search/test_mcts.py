"""The search with a scripted generator, worked out by hand: which nodes it makes, their values and visits, and
exactly the pairs it yields.

Question: the weather in Paris, gold ``get_weather(city='Paris')``, tools get_weather and get_time; gold words
{get_weather, city, paris}. Rules: 3 simulations, 2 samples an expansion, depth 2, w = 2, the verifier's ±1.
Every scripted token (one per character) has the same log-prob within a continuation, so a step's prior is
exp of it: e^-3 for the first continuation, e^-0.1 for the second, e^-0.5 for the rest.

1. The root is expanded: ``get_weather(city='Paris')`` -> A1 ``get_weather(city=`` (fast 0.1 + 1 - 0.5 = 0.6),
   A2 ``'Paris')`` (0.6, finished); ``get_time(city='Paris')`` -> B1 ``get_time(city=`` (0.1 + 0.5 - 0.5 = 0.1),
   B2 ``'Paris')`` (0.6). Rollout by highest V: A1, A2: right, +1. A2 = A1 = 1.6, root 1; N = 1.
2. Root N = 1, ln 1 = 0: A1 (1.6/2) over B1 (0.1). A1 is expanded: ``'London')`` -> C (0.1 + 0 - 0.5 = -0.4);
   ``'Paris', unit='c')`` -> its two steps pass depth 2: one node D (0.1 + 1/3 - 0.5). Rollout: A2 again, +1:
   A2 = A1 = 2.6 (N = 2), root 2.
3. Root N = 2: A1 2.6/3 + 2·e^-3·sqrt(ln 2/3) = 0.915 against B1 0.1 + 2·e^-0.1·sqrt(ln 2) = 1.607: B1 is
   expanded: ``'Paris')`` twice -> E, F (0.6 each). Rollout: B1's children B2, E, F all 0.6: B2, the first;
   ``get_time(city='Paris')`` is wrong, -1: B2 = -0.4, B1 = -0.9.

Pairs: root A1 (2.6) vs B1 (-0.9): kept; A1's A2 (2.6) vs C (-0.4): kept; B1's E (0.6) vs B2 (-0.4): the same
text, overlap 1: left out.
"""

import json
import math

import pytest

from grape.search.generator import Continuation
from grape.search.mcts import SearchRules, search, search_from_record, search_record
from grape.search.pairs import OVERLAP, PairRules, answer_pair, step_pairs
from grape.search.rewards import verifier_reward

TOOLS = [{"name": n, "description": n, "parameters": {"type": "dict", "properties": {"city": {"type": "string"}},
          "required": ["city"]}} for n in ("get_weather", "get_time")]  # fmt: skip
ROW = {"id": "w1", "prompt": "Weather in Paris?", "answer": [{"get_weather": {"city": ["Paris"]}}], "tools": TOOLS}


def scripted(text: str, logprob: float = -0.5, finished: bool = True) -> Continuation:
    return Continuation(text, finished, list(range(1, len(text) + 1)), [logprob] * len(text))


class ScriptedGenerator:
    def __init__(self, script: dict[str, list[list[Continuation]]]):
        self.script, self.calls = {k: list(v) for k, v in script.items()}, []

    def sample(self, requests):
        answers = []
        for r in requests:
            self.calls.append((r.prompt, r.prefix, r.n, r.seed))
            answers.append(self.script[r.prefix].pop(0))
            assert len(answers[-1]) == r.n
        return answers


SCRIPT = {
    "": [[scripted("get_weather(city='Paris')", -3.0), scripted("get_time(city='Paris')", -0.1)]],
    "get_weather(city=": [[scripted("'London')"), scripted("'Paris', unit='c')")]],
    "get_time(city=": [[scripted("'Paris')"), scripted("'Paris')")]],
}


@pytest.fixture
def result():
    generator = ScriptedGenerator(SCRIPT)
    rules = SearchRules(simulations=3, samples=2, max_depth=2, exploration=2.0)
    found = search(ROW["prompt"], ROW, generator, verifier_reward, rules, seed=10)
    found.generator = generator
    return found


def test_the_tree_holds_the_hand_worked_values_and_visits(result):
    root = result.root
    a1, b1 = root.children
    a2, c, d = a1.children
    b2, e, f = b1.children
    steps = [n.step for n in (a1, a2, c, d, b1, b2, e, f)]
    assert steps == ["get_weather(city=", "'Paris')", "'London')", "'Paris', unit='c')", "get_time(city=",
                     "'Paris')", "'Paris')", "'Paris')"]  # fmt: skip
    values = [n.value for n in (root, a1, a2, c, d, b1, b2, e, f)]
    assert values == pytest.approx([1.0, 2.6, 2.6, -0.4, 0.1 + 1 / 3 - 0.5, -0.9, -0.4, 0.6, 0.6])
    assert [n.visits for n in (root, a1, a2, c, d, b1, b2, e, f)] == [3, 2, 2, 0, 0, 1, 1, 0, 0]
    assert (a1.prior, b1.prior, c.prior) == pytest.approx((math.exp(-3), math.exp(-0.1), math.exp(-0.5)))
    assert all(n.finished for n in (a2, c, d, b2, e, f)) and not a1.finished
    assert root.expanded and a1.expanded and b1.expanded and not a2.expanded


def test_the_generator_is_asked_for_each_expansion_with_its_own_seed(result):
    assert [(prefix, n, seed) for _, prefix, n, seed in result.generator.calls] == [
        ("", 2, 10), ("get_weather(city=", 2, 11), ("get_time(city=", 2, 12)]  # fmt: skip
    assert result.generator_calls == 3
    assert [(r.text, r.reward) for r in result.rollouts] == [
        ("get_weather(city='Paris')", 1.0),
        ("get_weather(city='Paris')", 1.0),
        ("get_time(city='Paris')", -1.0),
    ]


def test_exactly_the_expected_step_pairs(result):
    kept, left_out = step_pairs(result.root, PairRules())
    root = result.root
    a1, b1 = root.children
    assert [(p.parent, p.chosen, p.rejected) for p in kept] == [(root, a1, b1), (a1, a1.children[0], a1.children[1])]
    assert [(p.parent.text(), p.chosen.step, p.rejected.step) for p in kept] == [
        ("", "get_weather(city=", "get_time(city="),
        ("get_weather(city=", "'Paris')", "'London')"),
    ]
    assert left_out == [OVERLAP]


def test_the_whole_answer_pair(result):
    pair = answer_pair(result, PairRules())
    assert (pair.chosen.text, pair.rejected.text) == ("get_weather(city='Paris')", "get_time(city='Paris')")


def test_a_search_read_back_from_json_has_the_same_tree_answers_and_pairs(result):
    """What the trees file keeps: every node's fields in place, the rollouts' leaves, and so the same pairs."""
    back = search_from_record(json.loads(json.dumps(search_record(result))))
    fields = ("step", "prior", "value", "visits", "finished", "expanded", "depth")
    nodes = [(n.label(), n.text(), *(getattr(n, f) for f in fields)) for n in result.root.walk()]
    assert [(n.label(), n.text(), *(getattr(n, f) for f in fields)) for n in back.root.walk()] == nodes
    assert len(nodes) == 9 and back.generator_calls == 3
    assert [(r.text, r.finished, r.reward, r.leaf.label()) for r in back.rollouts] == [
        ("get_weather(city='Paris')", True, 1.0, "0.0"),
        ("get_weather(city='Paris')", True, 1.0, "0.0"),
        ("get_time(city='Paris')", True, -1.0, "1.0"),
    ]
    assert all(b.leaf is back.root.at(b.leaf.label()) for b in back.rollouts)
    for rules in (PairRules(), PairRules(min_gap=0.0, min_chosen=-5.0, max_overlap=1.0)):
        pairs = [(p.parent.label(), p.chosen.label(), p.rejected.label()) for p in step_pairs(result.root, rules)[0]]
        assert [(p.parent.label(), p.chosen.label(), p.rejected.label()) for p in step_pairs(back.root, rules)[0]] \
            == pairs  # fmt: skip
    assert answer_pair(back, PairRules()).rejected.leaf.label() == "1.0"


def test_an_unfinished_leaf_is_finished_by_one_more_sample_before_it_is_judged():
    generator = ScriptedGenerator({"": [[scripted("get_weather(", finished=False)]],
                                   "get_weather(": [[scripted("city='Paris')")]]})  # fmt: skip
    found = search(ROW["prompt"], ROW, generator, verifier_reward, SearchRules(simulations=1, samples=1), seed=0)
    (node,) = found.root.children
    assert node.step == "get_weather(" and not node.finished and not node.children  # the ending is not in the tree
    assert [(r.text, r.finished, r.reward, r.leaf) for r in found.rollouts] == [
        ("get_weather(city='Paris')", True, 1.0, node)
    ]
    assert (node.visits, node.value) == (1, pytest.approx(0.1 + 1.0 - 0.5 + 1.0))


def test_a_node_that_cannot_be_expanded_is_still_rolled_out_and_judged():
    generator = ScriptedGenerator({"": [[scripted("get_weather(city='Paris')")]]})
    rules = SearchRules(simulations=3, samples=1, per_step=10)  # the whole answer is one finished step
    found = search(ROW["prompt"], ROW, generator, verifier_reward, rules, seed=0)
    (node,) = found.root.children
    assert node.finished and len(generator.calls) == 1  # expanded once; then selected but never expanded
    assert [r.reward for r in found.rollouts] == [1.0, 1.0, 1.0] and (node.visits, found.root.visits) == (3, 3)
