"""The matmul yardsticks of benchmarks/measure.py, on a clock whose readings the test chooses."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import measure  # noqa: E402


def fake_clock(monkeypatch, durations: list[float]) -> None:
    """perf_counter readings such that the i-th timed product takes durations[i] seconds."""
    readings = [0.0]
    for d in durations:
        readings += [readings[-1], readings[-1] + d]  # (start, end) of each product, back to back
    ticks = iter(readings[1:])
    monkeypatch.setattr(measure.time, "perf_counter", lambda: next(ticks))


def test_best_is_the_fastest_product_and_sustained_is_all_flops_over_all_time(monkeypatch):
    fake_clock(monkeypatch, [0.5, 0.25, 1.0, 0.25, 2.0])
    rates = measure.matmul_rates(torch.float32, torch.device("cpu"), n=4, repeats=5)
    flops = 2 * 4**3
    assert rates.products == 5
    assert rates.best == flops / 0.25
    assert rates.sustained == 5 * flops / 4.0
    assert rates.sustained < rates.best


def test_products_go_on_until_the_asked_seconds_have_passed(monkeypatch):
    fake_clock(monkeypatch, [0.5] * 20)
    rates = measure.matmul_rates(torch.float32, torch.device("cpu"), n=4, repeats=2, min_seconds=3.0)
    assert rates.products == 6  # 6 x 0.5 s reaches 3 s
    assert rates.best == rates.sustained == rates.best_of_window == 2 * 4**3 / 0.5


def test_the_peak_is_the_best_of_the_first_repeats_whatever_the_window_length(monkeypatch):
    # a burst late in a long window must not raise the peak: the best of 100 products is not the best of 5
    fake_clock(monkeypatch, [1.0, 0.8, 1.0, 0.25, 1.0])
    rates = measure.matmul_rates(torch.float32, torch.device("cpu"), n=4, repeats=2, min_seconds=4.0)
    flops = 2 * 4**3
    assert rates.products == 5
    assert rates.best == flops / 0.8
    assert rates.best_of_window == flops / 0.25
    assert rates.sustained == 5 * flops / 4.05


def test_peak_is_the_best_product(monkeypatch):
    fake_clock(monkeypatch, [1.0, 0.5, 1.0])
    assert measure.matmul_peak_flops(torch.float32, torch.device("cpu"), n=4, repeats=3) == 2 * 4**3 / 0.5


def test_real_products_give_positive_rates_with_the_window_best_at_least_sustained():
    rates = measure.matmul_rates(torch.float32, torch.device("cpu"), n=64, repeats=3, min_seconds=0.05)
    assert rates.products >= 3
    assert rates.best_of_window >= rates.best > 0
    assert rates.best_of_window >= rates.sustained > 0  # the first products may be slower than the window's mean
