"""The score stage end to end: files in, table out, with the real embedded target model."""

import json

import pyarrow.parquet as pq
import pytest
from reference import naive_sum_logprob, whole_text_ids

from grape.data.tables import read_sidecar, read_table_rows
from grape.errors import GrapeError, InputError
from grape.scoring.score import ScoreSettings, score
from grape.selection.scores_table import read_scores_table
from grape.text import Renderer

ROWS = [
    {"id": "add", "prompt": "What is 2+2?", "answer": "4",
     "candidates": [{"text": "4", "source": "a"}, {"text": "2+2 equals 4.", "source": "b"},
                    {"text": " Banana helicopter 🍇", "source": "c"}]},
    {"id": "cjk", "prompt": "Translate 'grape' into Chinese. ",
     "candidates": [{"text": "葡萄", "source": "a"}, {"text": "\nIt is 葡萄 (pútáo).", "source": "b"}]},
]  # fmt: skip


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def test_the_boundary_regression_of_issue_11(gemma, tmp_path):
    """`Answer: ` + `The…` is scored as the text's `Answer:` `▁The…`: no lone-space token costing ~19 nats."""
    rows = [{"id": "fr", "prompt": "What is the capital of France?",
             "candidates": [{"text": "The capital of France is Paris.", "source": "a"}]}]  # fmt: skip
    (row,) = score(write_jsonl(tmp_path / "in.jsonl", rows), None, ScoreSettings(dtype="float32"), loaded=gemma)
    tokenizer = gemma.tokenizer
    whole = tokenizer("Question: What is the capital of France?\nAnswer: The capital of France is Paris.")["input_ids"]
    prompt = tokenizer("Question: What is the capital of France?\nAnswer:")["input_ids"]
    response = [*whole[len(prompt) :], tokenizer.eos_token_id]
    assert whole[: len(prompt)] == prompt and row["n_tokens"] == len(response) == 8
    assert row["sum_logprob"] == pytest.approx(naive_sum_logprob(gemma.model, prompt, response), abs=8e-4)
    first = naive_sum_logprob(gemma.model, prompt, response[:1])
    assert first == pytest.approx(-2.14, abs=0.05)  # the lone-space split gave -20.98 here
    assert row["mean_logprob"] == pytest.approx(-1.407, abs=0.01)  # and -3.775 for the whole response


def test_scores_agree_with_naive_reference(gemma, tmp_path):
    out = tmp_path / "scores.parquet"
    rows = score(write_jsonl(tmp_path / "in.jsonl", ROWS), out, ScoreSettings(dtype="float32"), loaded=gemma)
    renderer = Renderer(gemma.tokenizer, "paper", eos=True)
    assert [r["status"] for r in rows] == ["scored"] * 5
    for row in rows:
        # the reference scores the whole text's ids; the response is its last n_tokens (EOS included)
        whole = whole_text_ids(gemma.tokenizer, "paper", row["prompt"], row["response"])
        n = len(renderer.encode(row["prompt"], [row["response"]])[0].response)
        prompt, response = whole[:-n], whole[-n:]
        reference = naive_sum_logprob(gemma.model, prompt, response)
        assert row["n_tokens"] == n
        assert abs(row["sum_logprob"] - reference) / len(response) < 1e-4
        assert row["mean_logprob"] == pytest.approx(row["sum_logprob"] / row["n_tokens"])
    table = pq.read_table(out)
    assert table.num_rows == 5 and table.column("answer").to_pylist()[:3] == ["4"] * 3
    meta = read_sidecar(out)
    assert meta["model"]["spec"] == "gemma-3-270m" and meta["settings"]["template"] == "paper"
    assert meta["counts"] == {"rows": 5, "scored": 5} and "transformers" in meta["versions"]
    # the sensible answer fits the target far better than nonsense
    by_source = {r["source"]: r["mean_logprob"] for r in rows if r["id"] == "add"}
    assert by_source["b"] > by_source["c"]


def test_no_eos_changes_token_count_and_jsonl_output(gemma, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", ROWS[:1])
    with_eos = score(path, None, ScoreSettings(), loaded=gemma)
    without = score(path, tmp_path / "s.jsonl", ScoreSettings(eos=False), loaded=gemma)
    assert [a["n_tokens"] - b["n_tokens"] for a, b in zip(with_eos, without, strict=True)] == [1, 1, 1]
    assert len(read_table_rows(tmp_path / "s.jsonl")) == 3


def test_too_long_fails_or_is_skipped(gemma, tmp_path, monkeypatch):
    rows = [{"id": "x", "prompt": "p", "candidates": [{"text": "short"}, {"text": "word " * 600}]}]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    monkeypatch.setattr(gemma.model.config, "max_position_embeddings", 512)
    with pytest.raises(InputError, match=r"row 1, field 'candidates\[1\]'.*over the model's 512"):
        score(path, None, ScoreSettings(), loaded=gemma)
    out = score(path, None, ScoreSettings(on_error="skip"), loaded=gemma)
    assert [r["status"] for r in out] == ["scored", "skipped:too_long"]


def test_skip_mode_accounts_for_every_candidate(gemma, tmp_path):
    path = tmp_path / "in.jsonl"
    lines = [json.dumps(ROWS[0]), "{broken", json.dumps({"id": "e", "prompt": "p", "candidates": [{"text": ""}]}),
             json.dumps(ROWS[0])]  # fmt: skip
    path.write_text("\n".join(lines) + "\n")
    out = score(path, tmp_path / "scores.jsonl", ScoreSettings(on_error="skip"), loaded=gemma)
    assert read_scores_table(tmp_path / "scores.jsonl") == out  # select, pairs and report read it: every column
    assert [(r["id"], r["candidate"], r["status"]) for r in out] == [
        ("add", 0, "scored"), ("add", 1, "scored"), ("add", 2, "scored"),
        (None, None, "skipped:malformed_row"),
        ("e", 0, "skipped:empty_response"),
        ("add", 0, "skipped:duplicate_id"), ("add", 1, "skipped:duplicate_id"), ("add", 2, "skipped:duplicate_id"),
    ]  # fmt: skip
    assert [r["row"] for r in out] == [1, 1, 1, 2, 3, 4, 4, 4]


def test_a_misspelt_setting_is_an_error_not_ignored(tmp_path):
    with pytest.raises(GrapeError, match=r"modle \(did you mean model\?\)"):
        score(write_jsonl(tmp_path / "in.jsonl", ROWS), None, modle="gemma-3-270m")


def test_an_output_name_grape_cannot_write_is_refused_before_the_model_is_asked_for(tmp_path):
    """The API's score() took x.csv, scored everything, then failed in write_rows: the work was lost. The model
    given is an object with no attributes: any use of it (before the check) fails with another error."""
    out = tmp_path / "scores.csv"
    with pytest.raises(GrapeError, match=r"scores\.csv: cannot write a table as a \.csv file"):
        score(write_jsonl(tmp_path / "in.jsonl", ROWS), out, ScoreSettings(), loaded=object())
    assert not out.exists() and not (tmp_path / "scores.csv.lock").exists()
