import torch

from grape.scoring.attention_masks import packed_attention_mask
from grape.scoring.packing import TokenGroup, build_batch, plan_batches, plan_rows, split_groups


def test_plan_rows_packs_small_groups_and_isolates_long_ones():
    rows = plan_rows([10, 3, 900, 4, 6, 1500], max_row_tokens=16)
    assert sorted(sorted(r) for r in rows) == [[0, 4], [1, 3], [2], [5]]
    # every group exactly once, and no row over the cap unless it holds a single longer group
    flat = sorted(g for r in rows for g in r)
    assert flat == [0, 1, 2, 3, 4, 5]
    lengths = [10, 3, 900, 4, 6, 1500]
    for row in rows:
        assert len(row) == 1 or sum(lengths[g] for g in row) <= 16


def test_plan_batches_respects_token_budget():
    lengths = [100, 90, 80, 50, 50, 10]
    batches = plan_batches(lengths, batch_tokens=200)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for batch in batches:
        assert len(batch) * max(lengths[i] for i in batch) <= 200 or len(batch) == 1


def test_build_batch_layout_positions_and_sources():
    groups = [TokenGroup([5, 6, 7], [[8, 9], [10]]), TokenGroup([11], [[12, 13, 14]])]
    batch = build_batch(groups, [[0, 1]])
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9, 10, 11, 12, 13, 14]]
    assert batch.position_ids.tolist() == [[0, 1, 2, 3, 4, 3, 0, 1, 2, 3]]
    assert batch.branch.tolist() == [[0, 0, 0, 1, 1, 2, 0, 1, 1, 1]]
    assert batch.segment.tolist() == [[0, 0, 0, 0, 0, 0, 1, 1, 1, 1]]
    # token 8 is predicted by the last prompt token (index 2), 9 by 8; 10 again by the prompt's end
    assert batch.source_index.tolist() == [2, 3, 2, 6, 7, 8]
    assert batch.target_ids.tolist() == [8, 9, 10, 12, 13, 14]
    assert batch.candidate_of_token.tolist() == [0, 0, 1, 2, 2, 2]
    assert batch.candidates == [(0, 0), (0, 1), (1, 0)]


def test_mask_each_response_sees_prompt_and_itself_only():
    groups = [TokenGroup([1, 2], [[3, 4], [5]])]
    batch = build_batch(groups, [[0], [0]])  # two rows, same width: no padding
    mask = packed_attention_mask(batch.segment, batch.branch, batch.position_ids)[0, 0].int().tolist()
    assert mask == [
        [1, 0, 0, 0, 0],
        [1, 1, 0, 0, 0],
        [1, 1, 1, 0, 0],
        [1, 1, 1, 1, 0],
        [1, 1, 0, 0, 1],  # response 2 does not see response 1
    ]


def test_mask_padding_and_sliding_window():
    groups = [TokenGroup([1, 2, 3], [[4]]), TokenGroup([1], [[2]])]
    batch = build_batch(groups, [[0], [1]])
    mask = packed_attention_mask(batch.segment, batch.branch, batch.position_ids, sliding_window=2)
    assert mask.shape == (2, 1, 4, 4)
    assert batch.position_ids[1].tolist() == [0, 1, 0, 1]  # the padding counts from 0 again: a run of its own
    assert mask[0, 0, 3].tolist() == [False, False, True, True]  # window 2: sees positions 2 and 3
    assert mask[1, 0, 2].tolist() == [False, False, True, False]  # padding sees itself only
    assert mask[1, 0, 3].tolist() == [False, False, False, True]
    assert torch.all(mask.any(-1))


def test_split_groups_repeats_the_prompt_only_when_candidates_overflow_a_row():
    groups = [TokenGroup([1] * 10, [[2] * 50, [3] * 30, [4] * 70, [5] * 200]), TokenGroup([1] * 5, [[2] * 5])]
    assert split_groups(groups, max_row_tokens=100) == [(0, [0, 1]), (0, [2]), (0, [3]), (1, [0])]
    assert split_groups(groups, max_row_tokens=10_000) == [(0, [0, 1, 2, 3]), (1, [0])]
