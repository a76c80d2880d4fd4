"""The score stage end to end: files in, table out, with the real embedded target model."""

import json

import pyarrow.parquet as pq
import pytest
from reference import naive_sum_logprob

from grape.data.tables import read_sidecar, read_table_rows
from grape.errors import InputError
from grape.scoring.render import Renderer
from grape.scoring.score import ScoreSettings, score

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


def test_scores_agree_with_naive_reference(gemma, tmp_path):
    out = tmp_path / "scores.parquet"
    rows = score(write_jsonl(tmp_path / "in.jsonl", ROWS), out, ScoreSettings(dtype="float32"), loaded=gemma)
    renderer = Renderer(gemma.tokenizer, "paper", eos=True)
    assert [r["status"] for r in rows] == ["scored"] * 5
    for row in rows:
        prompt = renderer.prompt_ids([row["prompt"]])[0]
        response = renderer.response_ids([row["response"]])[0]
        reference = naive_sum_logprob(gemma.model, prompt, response)
        assert row["n_tokens"] == len(response)
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
    out = score(path, None, ScoreSettings(on_error="skip"), loaded=gemma)
    assert [(r["id"], r["candidate"], r["status"]) for r in out] == [
        ("add", 0, "scored"), ("add", 1, "scored"), ("add", 2, "scored"),
        (None, None, "skipped:malformed_row"),
        ("e", 0, "skipped:empty_response"),
        ("add", 0, "skipped:duplicate_id"), ("add", 1, "skipped:duplicate_id"), ("add", 2, "skipped:duplicate_id"),
    ]  # fmt: skip
    assert [r["row"] for r in out] == [1, 1, 1, 2, 3, 4, 4, 4]
