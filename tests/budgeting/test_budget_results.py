"""What a budget run reports: the answer-format rate, held-out log-likelihood, and the summary by share."""

from __future__ import annotations

import pytest

from grape.budgeting.results import format_metrics, heldout_metrics, states_final_answer, summary_markdown


@pytest.mark.parametrize(
    ("response", "stated"),
    [
        ("3 + 4 = 7. The answer is 7.", True),
        ("She has 5 left.\n#### 5", True),
        ("so x = \\boxed{2x+1}", True),
        ("Answer: 12", True),
        ("3 + 4 = 7", False),  # a math verifier would still read 7, as the last number
        ("", False),
        (None, False),
    ],
)
def test_a_final_answer_counts_only_when_stated(response, stated):
    assert states_final_answer(response) is stated


def test_the_format_rate_of_eval_rows_with_its_interval():
    rows = [{"response": "The answer is 1."}, {"response": "1"}, {"response": "#### 2"}, {"response": ""}]
    metrics = format_metrics(rows)
    assert (metrics["format_count"], metrics["format_rate"]) == (2, 0.5)
    low, high = metrics["format_ci95"]
    assert low == pytest.approx(0.1500, abs=1e-4) and high == pytest.approx(0.8500, abs=1e-4)  # Wilson, n = 4


def test_heldout_log_likelihood_by_row_and_by_token():
    rows = [{"status": "scored", "n_tokens": 2, "sum_logprob": -2.0, "mean_logprob": -1.0},
            {"status": "scored", "n_tokens": 6, "sum_logprob": -3.0, "mean_logprob": -0.5},
            {"status": "skipped:too_long", "n_tokens": 0, "sum_logprob": None, "mean_logprob": None}]  # fmt: skip
    assert heldout_metrics(rows) == {"heldout_rows": 2, "heldout_mean_logprob": -0.75, "heldout_token_logprob": -0.625}
    assert heldout_metrics([])["heldout_mean_logprob"] is None


def test_the_summary_is_the_mean_over_seeds_by_share_with_the_range():
    cells = [
        {"share": 0.0, "seed": 0, "n_sft": 0, "n_pairs": 8, "accuracy": 0.2, "format_rate": 0.0},
        {"share": 0.0, "seed": 1, "n_sft": 0, "n_pairs": 8, "accuracy": 0.4, "format_rate": 0.1},
        {"share": 1.0, "seed": 0, "n_sft": 8, "n_pairs": 0, "accuracy": 0.5, "format_rate": 0.9,
         "heldout_mean_logprob": -1.25},
    ]  # fmt: skip
    lines = summary_markdown(cells, budget=8, pair_cost=1).splitlines()
    assert lines[0] == "# Budget 8 (a pair costs 1 units)"
    assert "| 0 | 0 | 8 | 2 | 30.0% [20.0%, 40.0%] | 5.0% [0.0%, 10.0%] | n/a |" in lines
    assert "| 1 | 8 | 0 | 1 | 50.0% | 90.0% | -1.250 |" in lines
