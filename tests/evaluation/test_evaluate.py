"""`grape eval`: prompts in the training format, real greedy answers judged by the math verifier."""

from __future__ import annotations

import json

import pytest

from grape.cli import main
from grape.data.layout import Columns
from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.evaluation.evaluate import evaluate
from grape.evaluation.metrics import wilson_interval
from grape.generation.hf_backend import HFBackend
from grape.text import Renderer

ITEMS = [
    {"id": "add", "prompt": "What is 2 + 3?", "answer": "5"},
    {"id": "mul", "prompt": "What is 4 times 5?", "answer": "#### 20"},  # GSM8K's gold format
    {"id": "wrong-gold", "prompt": "What is 1 + 1?", "answer": "3"},  # a gold answer the model will not give
    {"id": "no-gold", "prompt": "What is 3 + 3?"},
]


def test_eval_prompts_are_the_training_prompts(gemma, smollm2):
    """The ids generation starts from are the Renderer's: the model is asked as it was trained."""
    prompt = "What is 2 + 3?"
    paper = Renderer(gemma.tokenizer, "paper")
    assert HFBackend(gemma, "paper").prompt_ids(prompt) == paper.encode(prompt, ["The sum is 5."])[0].prompt
    chat = Renderer(smollm2.tokenizer, "chat")
    assert HFBackend(smollm2, "chat").prompt_ids(prompt) == chat.encode(prompt, ["The sum is 5."])[0].prompt


def test_known_answers_from_the_base_model(gemma, tmp_path):
    data = write_rows(ITEMS, tmp_path / "items.jsonl")
    rows, summary = evaluate(data, tmp_path / "eval.jsonl", loaded=gemma, max_new_tokens=12)
    by_id = {r["id"]: r for r in rows}
    # Gemma 3 270M (greedy) answers "2 + 3 = 5" and "4 times 5 = 20", and "1 + 1 = 2".
    assert (by_id["add"]["correct"], by_id["mul"]["correct"], by_id["wrong-gold"]["correct"]) == (True, True, False)
    assert by_id["no-gold"]["correct"] is None and by_id["no-gold"]["reason"] == "no gold answer"
    assert "Question:" not in by_id["add"]["response"]  # cut at the paper template's stop string
    assert (summary["items"], summary["judged"], summary["correct"]) == (4, 3, 2)
    assert summary["accuracy"] == pytest.approx(2 / 3)
    assert summary["ci95"] == pytest.approx(list(wilson_interval(2, 3)))
    written = read_table_rows(tmp_path / "eval.jsonl")
    assert [r["id"] for r in written] == ["add", "mul", "wrong-gold", "no-gold"]
    assert read_sidecar(tmp_path / "eval.jsonl")["summary"]["correct"] == 2


def test_grape_eval_command_writes_one_row_per_item(tiny_model_dir, tmp_path, capsys):
    data = write_rows(ITEMS, tmp_path / "items.jsonl")
    out = tmp_path / "tiny.eval.jsonl"
    argv = ["eval", "--model", str(tiny_model_dir), "--data", str(data), "-o", str(out), "--max-new-tokens", "3"]
    assert main([*argv, "--limit", "2"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == ["add", "mul"]
    assert all(r["n_tokens"] <= 3 and r["finish_reason"] in ("stop", "length") for r in rows)
    assert "Evaluation (math)" in capsys.readouterr().err
    assert main([*argv, "--verifier", "nonsense"]) == 2


def test_an_empty_selection_of_items_is_an_error(tiny_model_dir, tmp_path):
    data = write_rows(ITEMS, tmp_path / "items.jsonl")
    with pytest.raises(GrapeError, match="limit must be at least 1"):
        evaluate(data, None, model=str(tiny_model_dir), limit=0)


def test_data_with_nothing_the_verifier_judges_by_is_refused_before_any_answer(tiny_model_dir, tmp_path):
    """SVAMP names its gold `answer_value`: without a mapping every answer would be generated, then not judged."""
    svamp = [{"item_id": "s1", "question": "What is 2 + 3?", "answer_value": 5.0}]
    data = write_rows(svamp, tmp_path / "svamp.jsonl")
    never = object()  # a model that fails on any use: nothing may be generated
    with pytest.raises(
        GrapeError,
        match=r"svamp.jsonl: no item has 'answer', which --verifier number judges by "
        r"\(its columns: answer_value, id, item_id, prompt\): map one, e.g. --columns answer=COLUMN",
    ):
        evaluate(data, None, loaded=never, verifier="number")
    with pytest.raises(GrapeError, match="no item has 'tests', 'test_list' or 'test', which --verifier code"):
        evaluate(data, None, loaded=never, verifier="code")
    rows, _ = evaluate(data, None, model=str(tiny_model_dir), verifier="number", max_new_tokens=2,
                       columns=Columns.parse("answer=answer_value"))  # fmt: skip
    assert rows[0]["answer"] == 5.0 and rows[0]["correct"] is False


def test_an_empty_answer_is_wrong_not_left_out(tiny_model_dir, tmp_path, monkeypatch):
    """A model that answers nothing is wrong on every item with a gold answer: leaving its empty answers out of
    the denominator would report the accuracy of the items it did answer."""
    import grape.evaluation.evaluate as stage

    answers = {"What is 2 + 3?": ("5", 1, "stop"), "What is 4 times 5?": ("", 0, "stop"),
               "What is 1 + 1?": ("", 0, "stop"), "What is 3 + 3?": ("", 0, "stop")}  # fmt: skip
    monkeypatch.setattr(stage, "generate_answers", lambda loaded, prompts, settings, **_: [answers[p] for p in prompts])
    data = write_rows(ITEMS, tmp_path / "items.jsonl")
    rows, summary = evaluate(data, None, model=str(tiny_model_dir), verifier="number")
    by_id = {r["id"]: r for r in rows}
    assert (by_id["mul"]["correct"], by_id["mul"]["reason"]) == (False, "empty response")
    assert by_id["no-gold"]["correct"] is None  # no gold answer: unjudged, empty or not
    assert (summary["judged"], summary["correct"], summary["accuracy"]) == (3, 1, pytest.approx(1 / 3))
