"""`grape eval` answers only what is missing: the answers a finished output or a killed run's journal holds
under the same model and settings are reused, judging is redone; anything else is answered afresh."""

from __future__ import annotations

import json

import pytest

from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.evaluation.answers import answers_key, item_key, journal_path
from grape.evaluation.evaluate import evaluate
from grape.models.load import load_model

ITEMS = [{"id": f"q{i}", "prompt": f"What is {i} + {i}?", "answer": str(2 * i)} for i in range(4)]


@pytest.fixture
def first_run(tiny_model_dir, tmp_path):
    """One uninterrupted eval (one item per batch, so that no answer depends on its batch)."""
    data = write_rows(ITEMS, tmp_path / "items.jsonl")
    out = tmp_path / "eval.jsonl"
    rows, summary = evaluate(data, out, model=str(tiny_model_dir), max_new_tokens=4, batch_size=1, verifier="number")
    return data, out, rows, summary


def test_a_finished_eval_is_judged_again_without_answering_again(tiny_model_dir, first_run):
    data, out, rows, summary = first_run
    assert summary["answers_reused"] == 0 and not journal_path(out).exists()
    key = read_sidecar(out)["answers_key"]
    assert key == answers_key(load_model(str(tiny_model_dir)), "paper", ["\nQuestion:"], 4)
    again, summary = evaluate(data, out, model=str(tiny_model_dir), max_new_tokens=4, batch_size=1, verifier="exact")
    assert summary["answers_reused"] == 4
    assert [r["response"] for r in again] == [r["response"] for r in rows]
    assert all(r["reason"].startswith("response is not") for r in again if r["response"])  # the new verifier's


def test_a_killed_run_resumes_from_its_journal(tiny_model_dir, first_run, tmp_path):
    data, out, rows, _ = first_run
    key = read_sidecar(out)["answers_key"]
    out.unlink()
    journal = journal_path(out)
    lines = [{"key": key, "item": item_key(r["id"], r["prompt"]), "response": f"journalled {r['id']}", "n_tokens": 2,
              "finish_reason": "stop"} for r in rows[:2]]  # fmt: skip
    lines.append({"key": "another-model", "item": item_key("q2", ITEMS[2]["prompt"]), "response": "stale",
                  "n_tokens": 1, "finish_reason": "stop"})  # fmt: skip
    journal.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"key": "' + key + '", "ite')  # torn
    resumed, summary = evaluate(data, out, model=str(tiny_model_dir), max_new_tokens=4, batch_size=1,
                                verifier="number")  # fmt: skip
    assert summary["answers_reused"] == 2
    assert [r["response"] for r in resumed] == ["journalled q0", "journalled q1"] + [r["response"] for r in rows[2:]]
    assert not journal.exists() and [r["id"] for r in read_table_rows(out)] == ["q0", "q1", "q2", "q3"]


def test_other_settings_or_an_edited_item_are_answered_afresh(tiny_model_dir, first_run, tmp_path):
    data, out, rows, _ = first_run
    _, summary = evaluate(data, out, model=str(tiny_model_dir), max_new_tokens=3, batch_size=1, verifier="number")
    assert summary["answers_reused"] == 0  # another max_new_tokens: another key
    evaluate(data, out, model=str(tiny_model_dir), max_new_tokens=4, batch_size=1, verifier="number")
    edited = write_rows([{**ITEMS[0], "prompt": "What is 0 plus 0?"}, *ITEMS[1:]], tmp_path / "edited.jsonl")
    _, summary = evaluate(edited, out, model=str(tiny_model_dir), max_new_tokens=4, batch_size=1, verifier="number")
    assert summary["answers_reused"] == 3


def test_answers_are_journalled_as_they_come(tiny_model_dir, tmp_path, monkeypatch):
    """A run killed after its first answer leaves that answer in the journal."""
    import grape.evaluation.answers as answers

    data = write_rows(ITEMS, tmp_path / "items.jsonl")
    out = tmp_path / "eval.jsonl"
    recorded = answers.AnswerJournal.record

    def killed_after_one(self, item, answer):
        recorded(self, item, answer)
        raise KeyboardInterrupt

    monkeypatch.setattr(answers.AnswerJournal, "record", killed_after_one)
    with pytest.raises(KeyboardInterrupt):
        evaluate(data, out, model=str(tiny_model_dir), max_new_tokens=4, batch_size=1, verifier="number")
    (line,) = journal_path(out).read_text().splitlines()
    assert json.loads(line)["item"] in {item_key(i["id"], i["prompt"]) for i in ITEMS} and not out.exists()
