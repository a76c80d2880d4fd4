import pytest

from grape.errors import GrapeError
from grape.selection.strategies import get_strategy

ROWS = [
    {"id": "q", "candidate": 0, "source": "a", "n_tokens": 10, "mean_logprob": -1.0},
    {"id": "q", "candidate": 1, "source": "b", "n_tokens": 30, "mean_logprob": -0.5},
    {"id": "q", "candidate": 2, "source": "c", "n_tokens": 5, "mean_logprob": -2.0},
    {"id": "q", "candidate": 3, "source": "a", "n_tokens": 30, "mean_logprob": -0.5},  # ties with 1
]


def order(name, rows=ROWS, seed=0):
    return [r["candidate"] for r in get_strategy(name)(list(rows), seed)]


def test_fit_strategies_and_deterministic_ties():
    assert order("grape") == [1, 3, 0, 2]  # tie on -0.5 broken by candidate index
    assert order("lowest") == [2, 0, 1, 3]
    assert order("grape", ROWS[::-1]) == [1, 3, 0, 2]  # input order does not matter


def test_length_source_and_all():
    assert order("longest") == [1, 3, 0, 2]
    assert order("shortest") == [2, 0, 1, 3]
    assert order("source:a") == [0, 3]
    assert order("source:zzz") == []
    assert order("all") == [0, 1, 2, 3]


def test_random_is_seeded_and_a_permutation():
    first = order("random", seed=1)
    assert sorted(first) == [0, 1, 2, 3]
    assert order("random", ROWS[::-1], seed=1) == first
    assert len({tuple(order("random", seed=s)) for s in range(20)}) > 1


def test_unknown_strategy():
    with pytest.raises(GrapeError, match="unknown strategy"):
        get_strategy("best")
