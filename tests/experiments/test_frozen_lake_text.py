"""Frozen Lake as text (experiments/ift_frozenlake): shortest paths against a plain relaxation reference, every
training path reaching the goal in gymnasium's own environment, and the judge's verdicts on hand-made answers."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import pytest

pytest.importorskip("gymnasium", reason="gymnasium (the `gym` extra) plays the answers")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "experiments" / "ift_frozenlake"))

from lake import distances_to_goal, find, noisy_path, play, prompt_text, random_map  # noqa: E402
from tiny_model import char_tokenizer  # noqa: E402

HAND_MAP = ("SFFF", "FHFH", "FFFH", "HFFG")


def relaxed_distances(rows):
    """Reference: Bellman-Ford style relaxation over all cells until nothing changes (no queue, no order)."""
    cells = [(r, c) for r in range(len(rows)) for c in range(len(rows[0])) if rows[r][c] != "H"]
    dist = {cell: (0 if rows[cell[0]][cell[1]] == "G" else None) for cell in cells}
    changed = True
    while changed:
        changed = False
        for r, c in cells:
            near = [dist[n] for n in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)) if dist.get(n) is not None]
            if near and rows[r][c] != "G" and (dist[(r, c)] is None or min(near) + 1 < dist[(r, c)]):
                dist[(r, c)], changed = min(near) + 1, True
    return {cell: d for cell, d in dist.items() if d is not None}


@pytest.mark.parametrize("size", [4, 5, 6])
def test_distances_equal_a_relaxation_reference(size):
    for seed in range(20):
        rows = random_map(size, 0.75, seed)
        assert distances_to_goal(rows) == relaxed_distances(rows)


@pytest.mark.parametrize("size", [4, 6])
def test_noise_free_paths_are_shortest_and_win_in_the_environment(size):
    for seed in range(20):
        rows = random_map(size, 0.8, seed)
        path = noisy_path(rows, 0.0, random.Random(seed), limit=64)
        assert len(path) == distances_to_goal(rows)[find(rows, "S")]
        assert play(rows, path) == {"success": True, "steps": len(path), "end": "goal"}


def test_noisy_paths_still_win_and_some_take_detours():
    lengths = []
    for seed in range(40):
        rows = random_map(5, 0.8, seed)
        path = noisy_path(rows, 0.3, random.Random(seed), limit=40)
        assert play(rows, path)["success"], (rows, path)
        lengths.append(len(path) - distances_to_goal(rows)[find(rows, "S")])
    assert min(lengths) == 0 and max(lengths) > 0


def test_the_judge_on_hand_made_answers():
    assert play(HAND_MAP, "RRDDDR")["end"] == "goal"  # S(0,0) → (0,2) → down to (3,2) → G(3,3)
    assert play(HAND_MAP, "RD") == {"success": False, "steps": 2, "end": "hole"}  # (1,1) is a hole
    assert play(HAND_MAP, "UL") == {"success": False, "steps": 2, "end": "stopped"}  # the edge keeps it at S
    assert play(HAND_MAP, "RRX") == {"success": False, "steps": 2, "end": "invalid"}


def test_every_character_is_one_token_and_decodes_back():
    tokenizer = char_tokenizer()
    text = prompt_text(HAND_MAP) + "RRDDDR"
    ids = tokenizer(text)["input_ids"]
    assert len(ids) == len(text) and tokenizer.decode(ids) == text
