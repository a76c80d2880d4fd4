"""UCB and backup on a hand-made tree, against the formula worked out by hand."""

import math

import pytest

from grape.search.tree import Node, backup, best_child, highest_value_child, ucb


def _hand_tree():
    root = Node(visits=2, value=1.0, expanded=True)
    a = root.add("get_weather(", prior=0.5, value=1.0)
    a.visits = 1
    b = root.add("get_time(", prior=0.9, value=0.2)
    return root, a, b


def test_ucb_is_value_over_visits_plus_one_plus_the_prior_weighted_exploration():
    root, a, b = _hand_tree()
    # a: 1.0/2 + 1 * 0.5 * sqrt(ln 2 / 2) = 0.5 + 0.5 * 0.58871 = 0.79435
    assert ucb(a, root.visits, 1.0) == pytest.approx(0.794353, abs=1e-6)
    # b: 0.2/1 + 1 * 0.9 * sqrt(ln 2 / 1) = 0.2 + 0.9 * 0.83255 = 0.94930
    assert ucb(b, root.visits, 1.0) == pytest.approx(0.949299, abs=1e-6)
    assert best_child(root, 1.0) is b  # exploration wins with w = 1
    assert best_child(root, 0.1) is a  # 0.52944 against 0.27493
    assert highest_value_child(root) is a


def test_a_parent_never_visited_explores_nothing():
    root, a, b = _hand_tree()
    assert ucb(a, 0, 5.0) == 0.5 and ucb(b, 0, 5.0) == 0.2
    assert ucb(a, 1, 5.0) == 0.5  # ln 1 = 0


def test_equal_scores_take_the_first_child():
    root = Node(visits=3)
    first, second = root.add("x", 1.0, 0.4), root.add("y", 1.0, 0.4)
    assert best_child(root, 1.0) is first and highest_value_child(root) is first
    assert second is not first


def test_backup_adds_the_reward_and_a_visit_from_the_leaf_to_the_root():
    root, a, b = _hand_tree()
    leaf = a.add("city=", prior=0.7, value=0.6)
    backup(leaf, -1.0)
    assert (leaf.visits, leaf.value) == (1, pytest.approx(-0.4))
    assert (a.visits, a.value) == (2, 0.0)
    assert (root.visits, root.value) == (3, 0.0)
    assert (b.visits, b.value) == (0, 0.2)  # off the path: untouched
    assert ucb(a, root.visits, 1.0) == pytest.approx(0.0 + 0.5 * math.sqrt(math.log(3) / 3))


def test_a_node_knows_its_text_depth_and_place():
    root, a, b = _hand_tree()
    leaf = b.add("city=", 1.0, 0.0).add("'Paris')", 1.0, 0.0, finished=True)
    assert leaf.text() == "get_time(city='Paris')" and leaf.depth == 3 and leaf.finished
    assert leaf.label() == "1.0.0" and root.label() == "root"
    assert [n.step for n in root.walk()] == ["", "get_weather(", "get_time(", "city=", "'Paris')"]
