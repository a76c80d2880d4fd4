"""The Wilson interval against hand-computed values."""

from __future__ import annotations

import math

import pytest

from grape.evaluation.metrics import wilson_interval


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
