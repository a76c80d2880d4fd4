"""Every stage's Python API takes its input as a file, a list of dicts or a datasets.Dataset, alike."""

import importlib

import pytest
from datasets import Dataset

import grape
from grape.data.tables import read_table_rows, table_file, write_rows


def _scored(ident, candidate, source, fit, correct=None):
    return {"id": ident, "candidate": candidate, "source": source, "status": "scored", "mean_logprob": fit,
            "sum_logprob": 3 * fit, "n_tokens": 3, "prompt": f"question {ident}", "response": f"{source} says {fit}",
            "messages": None, "answer": None, "correct": correct}  # fmt: skip


ROWS = [_scored("a", 0, "m1", -1.0, True), _scored("a", 1, "m2", -0.5, False), _scored("a", 2, "m3", -0.7, True),
        _scored("b", 0, "m1", -0.2, True), _scored("b", 1, "m2", -0.9, False)]  # fmt: skip


def test_read_table_rows_takes_a_file_a_list_or_a_dataset_alike(tmp_path):
    path = write_rows(ROWS, tmp_path / "scores.parquet")
    assert read_table_rows(path) == read_table_rows(ROWS) == read_table_rows(Dataset.from_list(ROWS)) == ROWS
    assert table_file(path) == path and table_file(ROWS) is None and table_file(Dataset.from_list(ROWS)) is None


@pytest.mark.parametrize("stage", ["select", "pairs"])
def test_select_and_pairs_give_the_same_rows_from_a_dataset_a_list_and_a_file(tmp_path, stage):
    run = getattr(grape, stage)
    path = write_rows(ROWS, tmp_path / "scores.jsonl")
    from_file, _ = run(path)
    from_list, _ = run(ROWS)
    from_dataset, _ = run(Dataset.from_list(ROWS))
    assert from_file == from_list == from_dataset and from_file
    assert Dataset.from_list(from_dataset).num_rows == len(from_file)  # and the rows make a Dataset back


def test_every_stage_named_in_grape_resolves_to_its_function():
    for name, module in grape.STAGES.items():
        assert getattr(grape, name) is getattr(importlib.import_module(module), name)
    with pytest.raises(AttributeError):
        grape.no_such_stage  # noqa: B018
