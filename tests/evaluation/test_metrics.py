"""The Wilson interval against hand-computed values."""

from __future__ import annotations

import math

import pytest

from grape.evaluation.metrics import mcnemar_exact, wilson_interval


@pytest.mark.parametrize(
    ("correct", "total", "expected"),
    [
        # p = 0: centre (z²/2n)/(1 + z²/n) = 0.19207/1.38415 = 0.13877, half-width the same: [0, 0.27753]
        (0, 10, (0.0, 0.27753)),
        # p = 1/2: centre 0.5, half-width z·sqrt(0.025 + 0.0096037)/1.38415 = 0.26341
        (5, 10, (0.23659, 0.76341)),
        (10, 10, (0.72247, 1.0)),
        # n = 100, p = 0.8: centre (0.8 + 0.019208)/1.038415 = 0.78890, half 1.95996·0.041183/1.038415 = 0.07773
        (80, 100, (0.71117, 0.86663)),
    ],
)
def test_wilson_interval_matches_hand_computed_values(correct, total, expected):
    assert wilson_interval(correct, total) == pytest.approx(expected, abs=2e-5)


def test_no_items_give_the_whole_range_and_impossible_counts_raise():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


def test_mean_t_interval_by_hand():
    from grape.evaluation.metrics import mean_t_interval

    # values 1, 2, 3, 4, 5: mean 3, sample sd sqrt(2.5), t(0.975, 4) = 2.7764451
    mean, half = mean_t_interval([1.0, 2.0, 3.0, 4.0, 5.0])
    assert mean == 3.0 and abs(half - 2.7764451 * math.sqrt(2.5) / math.sqrt(5)) < 1e-6
    # two values 0 and 2: sd sqrt(2), t(0.975, 1) = 12.7062047
    assert abs(mean_t_interval([0.0, 2.0])[1] - 12.7062047 * math.sqrt(2) / math.sqrt(2)) < 1e-5
    # a 90% interval is narrower; one value has no spread
    assert mean_t_interval([1.0, 2.0, 3.0, 4.0, 5.0], level=0.9)[1] < half
    assert math.isnan(mean_t_interval([7.0])[1])


@pytest.mark.parametrize(("b", "c"), [(0, 0), (0, 5), (3, 3), (10, 2), (1, 12), (40, 25), (7, 0)])
def test_mcnemar_exact_is_scipys_binomial_test_on_the_disagreements(b, c):
    from scipy.stats import binomtest

    # b items only the first gets right, c only the second, and some both or neither get right
    first = {f"b{i}": True for i in range(b)} | {f"c{i}": False for i in range(c)} | {"both": True, "none": False}
    second = {f"b{i}": False for i in range(b)} | {f"c{i}": True for i in range(c)} | {"both": True, "none": False}
    result = mcnemar_exact(first, second)
    assert (result["items"], result["only_first"], result["only_second"]) == (b + c + 2, b, c)
    expected = binomtest(b, b + c, 0.5).pvalue if b + c else 1.0
    assert result["p"] == pytest.approx(expected, rel=1e-12)
    assert mcnemar_exact(second, first)["p"] == pytest.approx(result["p"], rel=1e-12)  # symmetric


def test_mcnemar_exact_refuses_different_items():
    with pytest.raises(ValueError, match="different items"):
        mcnemar_exact({"a": True}, {"b": True})


def test_mcnemar_exact_refuses_lists_which_it_would_read_as_item_ids():
    with pytest.raises(TypeError, match="mappings"):
        mcnemar_exact([True, False, True], [False, False, True])
