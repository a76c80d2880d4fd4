"""The draw of a budget cell, as pure functions: the counts a budget buys, disjoint seeded instruction sets, the
keys that tell instructions apart, and the one-line errors for pools too small or rows that repeat."""

from __future__ import annotations

import random

import pytest

from grape.budgeting.draw import cell_counts, draw_cell, instruction_keys, keys_hash
from grape.errors import GrapeError

POOL = [f"q{i:02d}" for i in range(40)]


@pytest.mark.parametrize(
    ("budget", "share", "pair_cost", "counts"),
    [
        (128, 0.05, 1, (6, 122)),  # 6.4 rounds down
        (512, 0.05, 1, (26, 486)),  # 25.6 rounds up
        (3, 0.5, 1, (2, 1)),  # 1.5: half up, not to even
        (128, 0.25, 2, (32, 48)),  # (128 - 32) / 2
        (128, 0.1, 3, (13, 38)),  # (128 - 13) / 3 = 38.33: the rest is unspent
        (10, 0.7, 0.3, (7, 10)),  # 3 / 0.3 = 9.999... in floating point: still 10
        (10, 0, 0.3, (0, 33)),
        (100, 1, 1, (100, 0)),
        (4, 0, 5, (0, 0)),  # a pair costs more than the budget
    ],
)
def test_the_counts_a_budget_buys(budget, share, pair_cost, counts):
    assert cell_counts(budget, share, pair_cost) == counts


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 0.5, 1), "budget must be at least 1"), ((8, 1.5, 1), "share 1.5 is not in"), ((8, 0.5, 0), "pair_cost")],
)
def test_counts_refuse_what_buys_nothing_sensible(args, message):
    with pytest.raises(GrapeError, match=message):
        cell_counts(*args)


def test_sft_and_pair_instructions_are_disjoint_with_the_counts_of_the_rule():
    for share in (0, 0.05, 0.1, 0.25, 1):
        for seed in range(5):
            draw = draw_cell(POOL, POOL, 32, share, 1.5, seed)
            n_sft, n_pairs = cell_counts(32, share, 1.5)
            assert (draw.n_sft, draw.n_pairs) == (n_sft, n_pairs)
            assert len(set(draw.sft)) == n_sft and len(set(draw.pairs)) == n_pairs
            assert not set(draw.sft) & set(draw.pairs)


def test_the_draw_depends_on_the_seed_and_the_instructions_not_their_order():
    shuffled = random.Random(7).sample(POOL, len(POOL))
    assert draw_cell(POOL, POOL, 20, 0.25, 1, seed=3) == draw_cell(shuffled, shuffled[::-1], 20, 0.25, 1, seed=3)
    assert draw_cell(POOL, POOL, 20, 0.25, 1, seed=3) != draw_cell(POOL, POOL, 20, 0.25, 1, seed=4)
    first = draw_cell(POOL, POOL, 20, 0.25, 1, seed=3)
    assert keys_hash(first.sft) == keys_hash(list(reversed(first.sft))) != keys_hash(first.pairs)


def test_one_seeds_sft_sets_grow_and_its_pair_sets_shrink_nested_as_the_share_grows():
    draws = [draw_cell(POOL, POOL, 30, share, 1, seed=1) for share in (0, 0.05, 0.1, 0.25, 1)]
    for smaller, larger in zip(draws, draws[1:], strict=False):
        assert set(smaller.sft) <= set(larger.sft)
        assert set(larger.pairs) <= set(smaller.pairs)


def test_each_set_comes_only_from_its_own_pool():
    sft_pool, pair_pool = POOL[:25], POOL[15:]  # ten instructions in both
    for seed in range(10):
        draw = draw_cell(sft_pool, pair_pool, 30, 0.5, 1, seed)
        assert set(draw.sft) <= set(sft_pool) and set(draw.pairs) <= set(pair_pool)
        assert (draw.n_sft, draw.n_pairs) == (15, 15) and not set(draw.sft) & set(draw.pairs)


def test_a_pool_too_small_for_a_cell_is_one_line_naming_it():
    files = ("selected.jsonl", "pairs.jsonl")
    with pytest.raises(GrapeError, match=r"^selected.jsonl: 10 instructions, but share 1 of budget 12 needs 12 SFT"):
        draw_cell(POOL[:10], POOL, 12, 1, 1, 0, files)
    # the pair pool holds 12, but SFT took the 3 instructions it shares with it: 9 are left for 10 pairs
    with pytest.raises(GrapeError, match=r"^pairs.jsonl: 9 instructions left beside the 3 drawn for SFT \(of 12\), "
                       r"but share 0.25 of budget 13 needs 10 pairs at 1 units each"):  # fmt: skip
        draw_cell(POOL[:3], POOL[:12], 13, 0.25, 1, 0, files)


def test_instructions_are_ids_when_every_row_has_one_else_prompts():
    sft = [{"id": "a", "prompt": "p1", "completion": "x"}, {"id": 7, "prompt": "p2", "completion": "y"}]
    pairs = [{"id": "a", "prompt": "p1", "chosen": "x", "rejected": "z"}]
    assert instruction_keys(sft, pairs, ("s", "p")) == (["a", "7"], ["a"])
    chat = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}
    pairs_without_id = [{"prompt": [{"role": "user", "content": "hi"}], "chosen": "a", "rejected": "b"}]
    sft_keys, pair_keys = instruction_keys([*sft, chat], pairs_without_id, ("s", "p"))
    assert sft_keys[:2] == ["p1", "p2"] and sft_keys[2] == pair_keys[0]  # one conversation, one instruction


def test_a_repeated_instruction_or_a_row_without_a_prompt_names_file_row_and_field():
    rows = [{"id": "a", "prompt": "p", "completion": "x"}, {"id": "a", "prompt": "q", "completion": "y"}]
    with pytest.raises(GrapeError, match=r"^sel.jsonl, row 2, field 'id': instruction 'a' again \(first at row 1\)"):
        instruction_keys(rows, [], ("sel.jsonl", "pairs.jsonl"))
    with pytest.raises(GrapeError, match=r"^pairs.jsonl, row 1, field 'prompt': missing"):
        instruction_keys([], [{"chosen": "a", "rejected": "b"}], ("sel.jsonl", "pairs.jsonl"))
