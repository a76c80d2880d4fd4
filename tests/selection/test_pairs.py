"""`grape pairs`: every option on hand tables, ties, chat rows, the sidecar's reasons, and a reference loop."""

import json
import random
from collections import Counter

import pytest
import yaml
from test_select import row

from grape.cli import main
from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.scoring.score import SCORES_SCHEMA
from grape.selection.pairs import pairs


def pairs_of(made):
    """(id, chosen candidate, rejected candidate) per pair."""
    return [(p["id"], p["chosen_candidate"], p["rejected_candidate"]) for p in made]


@pytest.fixture
def unverified(tmp_path):
    rows = [
        row("a", 0, "m1", -1.0), row("a", 1, "m2", -0.2), row("a", 2, "m3", -3.0, status="skipped:too_long"),
        row("a", 3, "m3", -2.0),
        row("b", 0, "m1", -0.5), row("b", 1, "m2", -0.9),
        row("c", 0, "m1", -0.5), row("c", 1, "m2", None, status="skipped:empty_response"),
        {**row(None, None, None, None, status="skipped:malformed_row"), "prompt": None, "row": 9},
    ]  # fmt: skip
    path = write_rows(rows, tmp_path / "scores.parquet", SCORES_SCHEMA)
    (tmp_path / "scores.parquet.meta.json").write_text(json.dumps({"settings": {"model": "m", "template": "paper"}}))
    return path


@pytest.fixture
def verified(tmp_path):
    rows = [
        row("right-and-wrong", 0, "m1", -1.0, correct=True), row("right-and-wrong", 1, "m2", -0.3, correct=True),
        row("right-and-wrong", 2, "m3", -0.1, correct=False), row("right-and-wrong", 3, "m1", -2.5, correct=False),
        row("right-and-wrong", 4, "m2", -0.7, correct=None),  # the verifier could not tell
        row("all-right", 0, "m1", -1.0, correct=True), row("all-right", 1, "m2", -2.0, correct=True),
        row("all-wrong", 0, "m1", -1.0, correct=False), row("all-wrong", 1, "m2", -2.0, correct=False),
    ]  # fmt: skip
    return write_rows(rows, tmp_path / "verified.parquet", SCORES_SCHEMA)


def test_defaults_on_an_unverified_table_best_fit_against_worst_fit(unverified, tmp_path):
    made, summary = pairs(unverified, tmp_path / "pairs.jsonl")
    # a: best -0.2 (1) vs worst scored -2.0 (3; the skipped -3.0 is not eligible); b: 0 vs 1; c: one scored only
    assert pairs_of(made) == [("a", 1, 3), ("b", 0, 1)]
    assert made[0] == {
        "prompt": "prompt a", "chosen": "a-1", "rejected": "a-3", "id": "a", "chosen_source": "m2",
        "rejected_source": "m3", "chosen_score": -0.2, "rejected_score": -2.0, "chosen_candidate": 1,
        "rejected_candidate": 3, "margin": pytest.approx(1.8), "chosen_correct": None, "rejected_correct": None,
    }  # fmt: skip
    assert (summary["chosen_from"], summary["rejected_from"]) == ("all", "rest")
    assert summary["without_pair"] == {"no_chosen_eligible": 0, "no_rejected_eligible": 1, "margin_below_min": 0,
                                       "unreadable_row": 1}  # fmt: skip
    assert summary["sources"]["m1"] == {"candidates": 3, "chosen": 1, "rejected": 0, "chosen_mean_logprob": -0.5,
                                        "rejected_mean_logprob": None}  # fmt: skip
    assert read_table_rows(tmp_path / "pairs.jsonl") == made
    meta = read_sidecar(tmp_path / "pairs.jsonl")
    assert meta["instructions_without_pair"] == [
        {"id": None, "row": 9, "reason": "unreadable_row", "status": "skipped:malformed_row"},
        {"id": "c", "row": 1, "reason": "no_rejected_eligible", "candidates": 2, "scored": 1},
    ]  # fmt: skip
    assert meta["settings"] == {"chosen": "grape", "chosen_from": "all", "rejected": "lowest", "rejected_from": "rest",
                                "min_margin": None, "seed": 0}  # fmt: skip
    assert meta["score_settings"] == {"model": "m", "template": "paper"}
    assert meta["stage"] == "pairs" and meta["summary"]["pairs"] == 2


def test_defaults_on_a_verified_table_correct_against_incorrect(verified):
    made, summary = pairs(verified)
    # the best-fitting correct one (1: -0.3) against the worst-fitting incorrect one (3: -2.5);
    # the better-fitting incorrect one (2: -0.1) and the unjudged one (4) are not chosen
    assert pairs_of(made) == [("right-and-wrong", 1, 3)]
    assert (made[0]["chosen_correct"], made[0]["rejected_correct"]) == (True, False)
    assert (summary["chosen_from"], summary["rejected_from"]) == ("correct", "incorrect")
    assert summary["without_pair"]["no_chosen_eligible"] == 1  # all-wrong
    assert summary["without_pair"]["no_rejected_eligible"] == 1  # all-right
    assert (summary["chosen_correct"], summary["rejected_incorrect"]) == (1, 1)


def test_chosen_from_and_rejected_from(verified):
    made, _ = pairs(verified, chosen_from="all")  # best fit of all (2, incorrect) against the worst incorrect
    assert pairs_of(made) == [("right-and-wrong", 2, 3), ("all-wrong", 0, 1)]
    made, _ = pairs(verified, rejected_from="rest")  # best correct against the worst of every other scored one
    assert pairs_of(made) == [("right-and-wrong", 1, 3), ("all-right", 0, 1)]
    made, summary = pairs(verified, rejected_from="rest", rejected="lowest", chosen_from="all")
    assert pairs_of(made) == [("right-and-wrong", 2, 3), ("all-right", 0, 1), ("all-wrong", 0, 1)]
    assert summary["pairs_with_negative_margin"] == 0


def test_chosen_by_source_and_by_priority(verified, unverified):
    made, _ = pairs(unverified, chosen="source:m1")
    assert pairs_of(made) == [("a", 0, 3), ("b", 0, 1)]  # c: nothing scored to reject beside its m1 candidate
    made, _ = pairs(unverified, chosen="source:m3")  # a's m3 candidates: the skipped one is not eligible
    assert pairs_of(made) == [("a", 3, 0)]  # the rejected is the worst fit of the rest (m1 -1.0 below m2 -0.2)
    made, _ = pairs(verified, chosen="priority:m1,m2")  # m1's correct one, though m2's fits better
    assert pairs_of(made) == [("right-and-wrong", 0, 3)]
    made, _ = pairs(verified, chosen="priority:m3,m1", chosen_from="all")
    assert pairs_of(made) == [("right-and-wrong", 2, 3), ("all-wrong", 0, 1)]


def test_min_margin_keeps_pairs_far_enough_apart(unverified, verified):
    made, summary = pairs(unverified, min_margin=1.0)
    assert pairs_of(made) == [("a", 1, 3)]  # a: 1.8; b: 0.4 < 1.0
    assert summary["without_pair"]["margin_below_min"] == 1
    made, _ = pairs(unverified, min_margin=0.4)  # equal to the margin: kept
    assert pairs_of(made) == [("a", 1, 3), ("b", 0, 1)]
    # a random rejected one is drawn among those at least min_margin below: never a's m1 (-1.0, margin 0.8)
    drawn = {pairs_of(pairs(unverified, rejected="random", min_margin=1.0, seed=s)[0])[0] for s in range(30)}
    assert drawn == {("a", 1, 3)}
    made, summary = pairs(unverified, chosen="source:m3")  # a chosen one may fit worse than its rejected one
    assert made[0]["margin"] == -1.0 and summary["pairs_with_negative_margin"] == 1
    made, summary = pairs(unverified, chosen="source:m3", min_margin=0.0)
    assert made == [] and summary["without_pair"]["margin_below_min"] == 1


def test_random_draws_are_seeded_cover_every_candidate_and_do_not_follow_row_order(tmp_path):
    rows = [row("q", k, f"m{k}", -float(k)) for k in range(5)]
    path = write_rows(rows, tmp_path / "s.parquet", SCORES_SCHEMA)
    shuffled = write_rows(rows[::-1], tmp_path / "r.parquet", SCORES_SCHEMA)
    draws = [pairs_of(pairs(path, chosen="random", rejected="random", seed=s)[0])[0] for s in range(60)]
    assert draws == [pairs_of(pairs(shuffled, chosen="random", rejected="random", seed=s)[0])[0] for s in range(60)]
    assert {c for _, c, _ in draws} == set(range(5)) and {r for _, _, r in draws} == set(range(5))
    assert all(c != r for _, c, r in draws)
    rejected = {pairs_of(pairs(path, rejected="random", seed=s)[0])[0][2] for s in range(40)}
    assert rejected == {1, 2, 3, 4}  # the best fit (0) is the chosen one
    assert pairs_of(pairs(path, rejected="lowest")[0]) == [("q", 0, 4)]


def test_random_chosen_and_rejected_are_independent_draws():
    """Each ordered (chosen, rejected) pair of 5 candidates comes about equally often over seeds (1 in 20)."""
    rows = [row("q", k, f"m{k}", -float(k)) for k in range(5)]
    counts = Counter(pairs_of(pairs(rows, chosen="random", rejected="random", seed=s)[0])[0] for s in range(1000))
    assert len(counts) == 20 and min(counts.values()) >= 25 and max(counts.values()) <= 80, counts  # expect 50


def test_ties_are_broken_by_candidate_index_whatever_the_row_order(tmp_path):
    rows = [row("q", k, "m", -1.0) for k in range(4)]
    for order in (rows, rows[::-1], rows[2:] + rows[:2]):
        made, _ = pairs(write_rows(order, tmp_path / "t.parquet", SCORES_SCHEMA))
        assert pairs_of(made) == [("q", 0, 1)]  # best fit: 0 of the tied; worst fit of the rest: 1 of the tied


def test_an_identical_answer_is_not_a_rejected_one(tmp_path):
    rows = [row("q", 0, "m1", -1.0, response="42"), row("q", 1, "m2", -2.0, response="42"), row("q", 2, "m3", -1.5)]
    made, _ = pairs(write_rows(rows, tmp_path / "s.parquet", SCORES_SCHEMA))
    assert pairs_of(made) == [("q", 0, 2)]
    _, summary = pairs(write_rows(rows[:2], tmp_path / "s.parquet", SCORES_SCHEMA))
    assert summary["without_pair"]["no_rejected_eligible"] == 1


def test_chat_rows_are_conversational(tmp_path):
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    rows = [row("a", k, f"m{k}", -float(k), prompt=None, messages=json.dumps(messages)) for k in range(2)]
    made, _ = pairs(write_rows(rows, tmp_path / "chat.jsonl"), tmp_path / "pairs.parquet")
    assert made[0]["prompt"] == messages
    assert made[0]["chosen"] == [{"role": "assistant", "content": "a-0"}]
    assert made[0]["rejected"] == [{"role": "assistant", "content": "a-1"}]
    assert read_table_rows(tmp_path / "pairs.parquet")[0]["prompt"] == messages


def test_the_reference_rules_on_random_tables():
    """The default rules written as plain loops agree with grape pairs on 300 random verified tables."""
    rng = random.Random(0)
    for _ in range(300):
        rows = []
        for i in range(3):
            for k in range(rng.randint(1, 4)):
                status = rng.choice(["scored"] * 4 + ["skipped:too_long"])
                rows.append(row(f"q{i}", k, rng.choice("xyz"), rng.choice([-1.0, -0.5, -2.0]) if status == "scored"
                                else None, status=status, correct=rng.choice([True, False, None]),
                                response=rng.choice(["p", "q", "r", "s"])))  # fmt: skip
        margin = rng.choice([None, 0.0, 0.6])
        if not any(r["correct"] is not None for r in rows):
            continue
        expected = []
        for i in range(3):
            mine = [r for r in rows if r["id"] == f"q{i}" and r["status"] == "scored"]
            right = [r for r in mine if r["correct"] is True]
            if not right:
                continue
            best = max(r["mean_logprob"] for r in right)
            chosen = min((r for r in right if r["mean_logprob"] == best), key=lambda r: r["candidate"])
            wrong = [r for r in mine if r["correct"] is False and r["response"] != chosen["response"]
                     and (margin is None or chosen["mean_logprob"] - r["mean_logprob"] >= margin)]  # fmt: skip
            if wrong:
                worst = min(r["mean_logprob"] for r in wrong)
                rejected = min((r for r in wrong if r["mean_logprob"] == worst), key=lambda r: r["candidate"])
                expected.append((f"q{i}", chosen["candidate"], rejected["candidate"]))
        made, summary = pairs(rows, min_margin=margin)
        assert pairs_of(made) == expected
        assert summary["pairs"] + sum(summary["without_pair"].values()) == len({r["id"] for r in rows})


def test_bad_options_are_one_line_errors(unverified, tmp_path, capsys):
    cases = [
        (["--chosen", "lowest"], "--chosen 'lowest': use one of grape, random, source:NAME or priority:A,B,C"),
        (["--chosen", "priority:a,,b"], "--chosen: strategy 'priority:a,,b'"),
        (["--chosen-from", "wrong"], "--chosen-from 'wrong': use one of correct, all"),
        (["--rejected", "highest"], "--rejected 'highest': use one of lowest, random"),
        (["--rejected-from", "others"], "--rejected-from 'others': use one of incorrect, rest"),
        (["--chosen-from", "correct"], "--chosen-from correct: the scores table has no 'correct' column values"),
        (["--rejected-from", "incorrect"], "--rejected-from incorrect: the scores table has no 'correct'"),
    ]
    for flags, message in cases:
        assert main(["pairs", str(unverified), "-o", str(tmp_path / "p.jsonl"), *flags]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err
    pool = write_rows([{"id": "q", "prompt": "?", "candidates": [{"text": "a", "source": "m"}]}], tmp_path / "c.jsonl")
    assert main(["pairs", str(pool), "-o", str(tmp_path / "p.jsonl")]) == 2
    assert (
        "c.jsonl, row 1, field 'candidate': no such field: not a scores table (run grape score first)"
        in capsys.readouterr().err
    )
    broken = write_rows([row("q", 0, "m", -1.0), {**row("q", 1, "m", -1.0), "mean_logprob": "x", "row": 2}],
                        tmp_path / "broken.jsonl")  # fmt: skip
    with pytest.raises(GrapeError, match=r"broken.jsonl, row 2, field 'mean_logprob': a scored row needs a number"):
        pairs(broken)
    with pytest.raises(GrapeError, match="unknown PairsSettings setting"):
        pairs(unverified, rejeced="random")
    assert not (tmp_path / "p.jsonl").exists()


def test_the_command_takes_a_config_file_its_flags_win_and_it_prints_a_summary(verified, tmp_path, capsys):
    config = tmp_path / "pairs.yaml"
    config.write_text(yaml.safe_dump({"rejected_from": "rest", "min_margin": 5.0, "seed": 3}))
    out = tmp_path / "pairs.jsonl"
    assert main(["pairs", str(verified), "-o", str(out), "--config", str(config), "--min-margin", "0.5"]) == 0
    settings = read_sidecar(out)["settings"]
    assert (settings["rejected_from"], settings["min_margin"], settings["seed"]) == ("rest", 0.5, 3)
    assert settings["chosen_from"] == "correct"  # resolved from the table
    assert pairs_of(read_table_rows(out)) == [("right-and-wrong", 1, 3), ("all-right", 0, 1)]
    err = capsys.readouterr().err
    assert "2 pairs" in err and "1 no chosen eligible" in err and "pairs written to" in err
