import json

import pytest

from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.scoring.score import SCORES_SCHEMA
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
