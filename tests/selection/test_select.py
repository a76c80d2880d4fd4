import json

import pytest

from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.scoring.score import SCORES_SCHEMA
from grape.selection.dataset_card import card_path
from grape.selection.select import select


def row(ident, k, source, mean, status="scored", **extra):
    n = None if mean is None else 4 + (k or 0)
    base = {"id": ident, "candidate": k, "source": source, "n_tokens": n, "sum_logprob": mean and mean * n,
            "mean_logprob": mean, "status": status, "row": 1, "prompt": f"prompt {ident}", "messages": None,
            "response": f"{ident}-{k}", "answer": None, "correct": None}  # fmt: skip
    return {**base, **extra}


@pytest.fixture
def scores(tmp_path):
    rows = [
        row("a", 0, "m1", -1.0),
        row("a", 1, "m2", -0.2),
        row("a", 2, "m2", -3.0, status="skipped:too_long"),
        row("b", 0, "m1", -0.5, correct=False),
        row("b", 1, "m2", -0.9, correct=True),
        row("c", 0, "m1", None, status="skipped:empty_response"),
        {**row(None, None, None, None, status="skipped:malformed_row"), "prompt": None},
    ]
    rows[0]["correct"] = True
    rows[1]["correct"] = False
    return write_rows(rows, tmp_path / "scores.parquet", SCORES_SCHEMA)


def test_grape_selection_prompt_completion(scores, tmp_path):
    chosen, summary = select(scores, tmp_path / "sel.jsonl")
    assert [(c["id"], c["completion"], c["source"], c["score"]) for c in chosen] == [
        ("a", "a-1", "m2", -0.2), ("b", "b-0", "m1", -0.5)]  # fmt: skip
    assert chosen[0]["prompt"] == "prompt a"
    assert summary["instructions"] == 3 and summary["unreadable_rows"] == 1
    assert summary["instructions_without_candidate"] == 1  # c: its only candidate was skipped
    assert summary["sources"]["m2"]["chosen_share"] == 0.5
    meta = read_sidecar(tmp_path / "sel.jsonl")
    assert meta["instructions_without_candidate"] == ["c"]
    assert read_table_rows(tmp_path / "sel.jsonl") == chosen


def test_require_correct_reports_instructions_left_empty(scores):
    chosen, summary = select(scores, strategy="grape", require_correct=True)
    assert [(c["id"], c["candidate"]) for c in chosen] == [("a", 0), ("b", 1)]
    assert all(c["correct"] is True for c in chosen)
    assert summary["instructions_without_candidate"] == 1


def test_top_k_all_and_messages_format(scores):
    chosen, _ = select(scores, strategy="lowest", top_k=2, format="messages")
    assert [(c["id"], c["candidate"], c["rank"]) for c in chosen] == [("a", 0, 0), ("a", 1, 1), ("b", 1, 0),
                                                                       ("b", 0, 1)]  # fmt: skip
    assert chosen[0]["messages"] == [{"role": "user", "content": "prompt a"}, {"role": "assistant", "content": "a-0"}]
    everything, _ = select(scores, strategy="all")
    assert len(everything) == 4


def test_chat_prompts_stay_conversational(tmp_path):
    messages = json.dumps([{"role": "user", "content": "Hi"}])
    path = write_rows([row("a", 0, "m", -1.0, prompt=None, messages=messages)], tmp_path / "s.jsonl")
    chosen, _ = select(path)
    assert chosen[0]["prompt"] == [{"role": "user", "content": "Hi"}]
    assert chosen[0]["completion"] == [{"role": "assistant", "content": "a-0"}]


def test_bad_settings(scores, tmp_path):
    with pytest.raises(GrapeError, match="format"):
        select(scores, format="alpaca")
    with pytest.raises(GrapeError, match="top-k"):
        select(scores, top_k=0)
    plain = write_rows([row("a", 0, "m", -1.0)], tmp_path / "plain.parquet", SCORES_SCHEMA)
    with pytest.raises(GrapeError, match="grape verify"):
        select(plain, require_correct=True)


def test_s3ft_priority_on_verified_rows_and_the_summary_per_source(tmp_path):
    """S3FT: the model's own answer if correct, else its paraphrase if correct, else the reference."""
    rows = [
        row("own-right", 0, "self", -0.3, correct=True), row("own-right", 1, "paraphrase", -0.1, correct=True),
        row("own-right", 2, "reference", -2.0, correct=True),
        row("para", 0, "self", -0.2, correct=False), row("para", 1, "paraphrase", -0.6, correct=True),
        row("para", 2, "paraphrase", -0.4, correct=True), row("para", 3, "reference", -1.5, correct=True),
        row("gold", 0, "self", -0.1, correct=False), row("gold", 1, "paraphrase", -0.2, correct=False),
        row("gold", 2, "reference", -1.0, correct=True), row("gold", 3, "other", -0.05, correct=True),
        row("none", 0, "self", -0.1, correct=False), row("none", 1, "other", -0.1, correct=True),
    ]  # fmt: skip
    path = write_rows(rows, tmp_path / "scores.parquet", SCORES_SCHEMA)
    chosen, summary = select(path, tmp_path / "s3ft.jsonl", strategy="priority:self,paraphrase,reference",
                             require_correct=True)  # fmt: skip
    assert [(c["id"], c["source"], c["candidate"]) for c in chosen] == [
        ("own-right", "self", 0), ("para", "paraphrase", 2), ("gold", "reference", 2)]  # fmt: skip
    assert summary["instructions_without_candidate"] == 1  # "none": only an unlisted source is correct
    sources = summary["sources"]
    assert {s: v["chosen"] for s, v in sources.items()} == {"other": 0, "paraphrase": 1, "reference": 1, "self": 1}
    assert {s: v["chosen_mean_logprob"] for s, v in sources.items()} == {
        "other": None, "paraphrase": -0.4, "reference": -1.0, "self": -0.3}  # fmt: skip
    assert sources["paraphrase"]["mean_logprob"] == pytest.approx((-0.1 - 0.6 - 0.4 - 0.2) / 4)  # all scored
    assert read_sidecar(tmp_path / "s3ft.jsonl")["instructions_without_candidate"] == ["none"]
    card = card_path(tmp_path / "s3ft.jsonl").read_text()
    assert "in the order `self`, then `paraphrase`, then `reference` (S3FT)" in card


def test_the_select_summary_prints_the_chosen_fit_per_source(scores, capsys):
    from grape.selection.cli import print_select_summary

    _, summary = select(scores)
    print_select_summary(summary)
    out = capsys.readouterr().err  # the console writes to stderr
    assert "chosen mean logprob" in out
    m1 = next(line for line in out.splitlines() if " m1 " in line)
    assert "-0.5000" in m1  # m1's chosen candidate (b-0) has fit -0.5; its candidates' mean is -0.75


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"mean_logprob": "high"}, "row 2, field 'mean_logprob': a scored row needs a number, got 'high'"),
        ({"response": 5}, "row 2, field 'response': a scored row needs the response text, got 5"),
        ({"prompt": None}, "row 2, field 'prompt': a scored row needs a prompt (text) or messages, got None"),
        ({"id": None, "prompt": None, "response": None}, None),  # an unreadable input row: kept and counted
    ],
)
@pytest.mark.parametrize("stage", ["select", "pairs", "report"])
def test_a_bad_scores_row_is_one_line_naming_its_place_and_field_and_nothing_is_written(
    tmp_path, capsys, change, where, stage
):
    from grape.cli import main

    table = write_rows([row("a", 0, "m1", -1.0), {**row("a", 1, "m2", -0.5), **change}], tmp_path / "s.jsonl")
    out = tmp_path / ("out.html" if stage == "report" else "out.jsonl")
    out.write_text("kept\n")
    code = main([stage, str(table), "-o", str(out)])
    err = capsys.readouterr().err
    if where is None:
        assert code == 0, err
        return
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert f"s.jsonl, {where}" in err
    assert out.read_text() == "kept\n"


@pytest.mark.parametrize(
    "rows", [[], [{"id": "q", "prompt": "?", "candidates": [{"text": "a"}]}]], ids=["empty", "pool"]
)
def test_an_empty_table_or_a_pool_is_refused_and_an_existing_output_kept(tmp_path, capsys, rows):
    from grape.cli import main

    table, out = write_rows(rows, tmp_path / "in.jsonl"), tmp_path / "out.jsonl"
    out.write_text("kept\n")
    assert main(["select", str(table), "-o", str(out)]) == 2
    assert "in.jsonl" in capsys.readouterr().err and out.read_text() == "kept\n"


@pytest.mark.parametrize(
    ("argv", "named"),
    [(["select", "--strategy", "source:m3"], "'m3'"), (["select", "--strategy", "priority:x,y"], "'x', 'y'"),
     (["pairs", "--chosen", "source:nope"], "'nope'")],
)  # fmt: skip
def test_a_strategy_naming_no_source_of_the_table_is_refused(scores, tmp_path, capsys, argv, named):
    """A typo in a source name would select nothing and say only "no eligible candidate"."""
    from grape.cli import main

    out = tmp_path / "out.jsonl"
    assert main([argv[0], str(scores), "-o", str(out), *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert f"no candidate in the table comes from {named} (its sources: m1, m2)" in err and not out.exists()


def test_a_priority_list_needs_only_one_source_of_the_table_and_names_the_others(scores, capsys):
    chosen, _ = select(scores, strategy="priority:absent,m2")
    assert {r["source"] for r in chosen} == {"m2"}
    said = " ".join(capsys.readouterr().err.split())
    assert "strategy 'priority:absent,m2': no candidate in the table comes from 'absent': passed over" in said
