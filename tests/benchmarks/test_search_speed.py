"""benchmarks/search_speed.py refuses to time two generators whose searches differ: the same nodes in the same
places, priors within its tolerance; and its fallback questions (no BFCL data) are rows with a gold call."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import search_speed as bench  # noqa: E402

from grape.search.mcts import Search  # noqa: E402
from grape.search.tree import Node  # noqa: E402


def _search(second_step: str, prior: float) -> Search:
    root = Node()
    first = root.add("get_weather(", 0.5, 0.1)
    first.add(second_step, prior, 0.2)
    root.add("get_time(", 0.4, 0.0)
    return Search(root)


def test_equal_trees_pass_and_differing_ones_stop_the_benchmark():
    bench.same_tree(_search("city='Paris')", 0.3), _search("city='Paris')", 0.30005))
    with pytest.raises(SystemExit, match="different trees"):
        bench.same_tree(_search("city='Paris')", 0.3), _search("city='Rome')", 0.3))
    with pytest.raises(SystemExit, match="priors differ"):
        bench.same_tree(_search("city='Paris')", 0.3), _search("city='Paris')", 0.31))


def test_the_fallback_questions_are_drawn_rows_with_a_gold_call(tiny_smol_dir, monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "BFCL", tmp_path / "absent")
    rows, described = bench.questions(3, str(tiny_smol_dir), 0)
    again, _ = bench.questions(3, str(tiny_smol_dir), 0)
    assert len(rows) == 3 and all(r["answer"] for r in rows) and "BFCL data absent" in described
    assert [r["id"] for r in rows] == [r["id"] for r in again]  # the draw is seeded
