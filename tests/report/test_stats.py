import numpy as np
import pandas as pd
import pytest

from grape.report.collect import collect
from grape.report.margins import margins
from grape.report.stats import average_ranks, fit_length, overview, pearson, source_table, spearman


def test_pearson_hand_computed():
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    # dx = dy-permuted [-1.5, -.5, .5, 1.5]: sum(dx*dy) = 4, sum(dx^2) = sum(dy^2) = 5
    assert pearson([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert pearson([1, 2, 3], [5, 5, 5]) is None  # a constant sample has no correlation
    assert pearson([1], [2]) is None


def test_average_ranks_share_ties():
    assert average_ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]
    assert average_ranks([3, 3, 3]).tolist() == [2.0, 2.0, 2.0]


def test_spearman_is_pearson_of_ranks():
    assert spearman([1, 2, 3], [1, 10, 100]) == pytest.approx(1.0)  # monotone, not linear
    assert pearson([1, 2, 3], [1, 10, 100]) < 0.95
    # ranks [1,2,3,4] vs [1,2.5,2.5,4]: 4.5 / sqrt(5 * 4.5)
    assert spearman([1, 2, 3, 4], [10, 20, 20, 40]) == pytest.approx(4.5 / np.sqrt(22.5))


def test_fit_length_over_scored_candidates(scores):
    frame = collect(scores).candidates
    fit = fit_length(frame)
    scored = frame[frame["scored"]]
    tokens, means = scored["n_tokens"].astype(float), scored["mean_logprob"].astype(float)
    assert fit.n == 11
    assert fit.pearson == pytest.approx(np.corrcoef(tokens, means)[0, 1])
    reference = pd.DataFrame({"t": tokens, "m": means}).corr(method="spearman").loc["t", "m"]  # pandas' own ranks
    assert fit.spearman == pytest.approx(reference)
    assert fit.mean_tokens_all == pytest.approx((10 + 20 + 30 + 5 + 15 + 40 + 8 + 12 + 7 + 9 + 25) / 11)
    assert fit.mean_tokens_chosen == pytest.approx((30 + 5 + 12 + 7) / 4)  # q1 gamma, q2 alpha, q3 beta, q4 alpha


def test_source_table_counts_and_shares(verified_scores):
    table = source_table(collect(verified_scores).candidates)
    assert list(table["source"]) == ["alpha", "beta", "gamma"]  # most chosen first, ties by name
    rows = table.set_index("source")
    assert rows.loc["alpha", ["candidates", "scored", "chosen"]].tolist() == [4, 4, 2]
    assert rows.loc["gamma", ["candidates", "scored", "chosen"]].tolist() == [4, 3, 1]
    assert rows["chosen_share"].tolist() == [0.5, 0.25, 0.25]
    assert rows.loc["alpha", "mean_logprob"] == pytest.approx((-1.0 - 0.2 - 2.0 - 0.3) / 4)
    assert rows.loc["gamma", "mean_tokens"] == pytest.approx((30 + 40 + 25) / 3)
    assert rows[["correct", "verified"]].values.tolist() == [[2, 4], [1, 4], [1, 3]]
    assert rows.loc["gamma", "correct_share"] == pytest.approx(1 / 3)


def test_overview_counts(scores, verified_scores):
    inputs = collect(scores)
    assert overview(inputs.candidates, inputs.unreadable_rows) == {
        "instructions": 4, "candidates": 12, "scored": 11, "skipped": 1, "chosen": 4,
        "instructions_without_choice": 0, "instructions_without_correct": None, "unreadable_rows": 1,
    }  # fmt: skip
    verified = collect(verified_scores)
    assert overview(verified.candidates)["instructions_without_correct"] == 2  # q2 and q3


def test_margins_smallest_first_with_both_contenders(scores):
    found = margins(collect(scores).candidates)
    assert [m.id for m in found] == ["q4", "q1", "q2", "q3"]
    assert [m.margin for m in found] == pytest.approx([0.01, 0.05, 0.7, 1.0])
    q4 = found[0]
    assert (q4.best.source, q4.best.score, q4.best.n_tokens, q4.best.chosen) == ("alpha", -0.30, 7, True)
    assert (q4.second.source, q4.second.score, q4.second.chosen) == ("beta", -0.31, False)
    assert q4.instruction == "Instruction q4: say something"
    assert found[3].n_scored == 2  # q3's gamma was skipped


def test_single_candidate_instruction_has_no_margin_and_comes_last():
    frame = pd.DataFrame({
        "id": ["x", "y", "y"], "candidate": [0, 0, 1], "source": ["a", "a", "b"], "scored": [True] * 3,
        "n_tokens": [3, 4, 5], "mean_logprob": [-1.0, -2.0, -2.0], "instruction": ["X", "Y", "Y"],
        "response": ["r", "s", "t"], "chosen": [True, True, False],
    })  # fmt: skip
    found = margins(frame)
    assert [(m.id, m.margin) for m in found] == [("y", 0.0), ("x", None)]
    assert found[0].best.text == "s"  # a tie keeps the earlier candidate as the best
