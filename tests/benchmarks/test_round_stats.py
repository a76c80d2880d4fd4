"""Repeated-timing statistics of benchmarks/round_stats.py, against hand-computed values."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from round_stats import bracketing_peaks, per_round_ratios, ratio_refusal, rotated_order, spread_of  # noqa: E402


def test_rotated_order_puts_each_method_once_in_each_position():
    methods = ["naive", "padded", "engine"]
    orders = [rotated_order(methods, r) for r in range(4)]
    assert orders[0] == ["naive", "padded", "engine"]
    assert orders[1] == ["padded", "engine", "naive"]
    assert orders[2] == ["engine", "naive", "padded"]
    assert orders[3] == orders[0]
    for position in range(3):
        assert sorted(order[position] for order in orders[:3]) == sorted(methods)


def test_spread_of_five_rounds():
    spread = spread_of([12.0, 9.0, 11.0, 13.0, 10.0])
    assert (spread.n, spread.median, spread.low, spread.high) == (5, 11.0, 9.0, 13.0)
    assert (spread.q1, spread.q3) == (10.0, 12.0)  # sorted 9 10 11 12 13, inclusive quartiles
    assert spread.range_pct == pytest.approx(100 * 4 / 11)
    assert spread.iqr_pct == pytest.approx(100 * 2 / 11)
    assert spread.as_dict()["range_pct"] == pytest.approx(36.3636, abs=1e-4)
    assert spread.brief() == "11.000 (9.000-13.000)"


def test_spread_of_even_count_and_single_value():
    spread = spread_of([1.0, 2.0, 3.0, 4.0])
    assert spread.median == 2.5
    assert (spread.q1, spread.q3) == (1.75, 3.25)
    single = spread_of([5.0])
    assert (single.median, single.q1, single.q3, single.range_pct) == (5.0, 5.0, 5.0, 0.0)
    with pytest.raises(ValueError):
        spread_of([])


def test_per_round_ratios_pair_rounds():
    assert per_round_ratios([400.0, 450.0, 300.0], [100.0, 150.0, 100.0]) == [4.0, 3.0, 3.0]
    with pytest.raises(ValueError):
        per_round_ratios([1.0, 2.0], [1.0])


def test_ratio_refusal_on_spread_and_rounds():
    steady = spread_of([3.8, 3.9, 3.85, 4.0, 3.7])  # range 0.3 / 3.85 = 7.8%
    rate = spread_of([100.0, 110.0, 105.0])  # range exactly 10 / 105 = 9.5%
    assert ratio_refusal([steady, rate]) is None
    noisy = spread_of([100.0, 120.0, 100.0, 100.0, 100.0])  # 20%
    assert ratio_refusal([steady, noisy]) == "spread too large: 20%, rerun on a quiet machine"
    assert ratio_refusal([steady, noisy], max_spread_pct=25.0) is None
    assert ratio_refusal([spread_of([3.8, 3.9])]).startswith("2 round(s) cannot show a spread")


def test_bracketing_peaks_average_the_peaks_around_each_round():
    # peaks before round 1, between rounds 1 and 2, after round 2
    assert bracketing_peaks([160.0, 140.0, 150.0]) == [150.0, 145.0]
    # a round at 100 useful GFLOP/s is 2/3 of a 150 peak and 0.69 of 145, not 0.625 of the start's 160
    fractions = per_round_ratios([100.0, 100.0], bracketing_peaks([160.0, 140.0, 150.0]))
    assert fractions == pytest.approx([100 / 150, 100 / 145])
    with pytest.raises(ValueError):
        bracketing_peaks([160.0])
