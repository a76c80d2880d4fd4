import json

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from shared_data import shared_file

from grape.data.layout import Columns, load_instructions
from grape.errors import GrapeError, InputError

GROUPED = [
    {"id": "q1", "prompt": "Add 2 and 2.", "answer": 4,
     "candidates": [{"text": "4", "source": "a"}, {"text": "Four.", "source": "b", "correct": True}]},
    {"id": 7, "prompt": [{"role": "user", "content": "Hi"}], "candidates": ["Hello!", "Hey."]},
]  # fmt: skip


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_grouped_jsonl(tmp_path):
    items = load_instructions(write_jsonl(tmp_path / "in.jsonl", GROUPED))
    assert [i.id for i in items] == ["q1", "7"]
    assert items[0].answer == 4 and items[0].row == 1 and items[1].row == 2
    assert [c.text for c in items[0].candidates] == ["4", "Four."]
    assert items[0].candidates[1].extra == {"correct": True}
    assert items[1].messages == [{"role": "user", "content": "Hi"}] and items[1].candidates[0].source is None


def test_parquet_and_datasets_directory_give_the_same_instructions(tmp_path):
    rows = [{"id": "q1", "prompt": "p", "candidates": [{"text": "x", "source": "a"}, {"text": "y", "source": "b"}]}]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "in.parquet")
    datasets.Dataset.from_list(rows).save_to_disk(str(tmp_path / "ds"))
    a = load_instructions(tmp_path / "in.parquet")
    b = load_instructions(tmp_path / "ds")
    assert [(c.text, c.source) for c in a[0].candidates] == [(c.text, c.source) for c in b[0].candidates]
    assert a[0].id == b[0].id == "q1"


def test_long_layout_groups_by_prompt_with_mapped_columns(tmp_path):
    rows = [
        {"question": "A?", "answer_text": "a1", "model": "m1"},
        {"question": "B?", "answer_text": "b1", "model": "m1"},
        {"question": "A?", "answer_text": "a2", "model": "m2"},
    ]
    columns = Columns.parse("prompt=question,response=answer_text,source=model")
    items = load_instructions(write_jsonl(tmp_path / "long.jsonl", rows), columns)
    assert [i.prompt for i in items] == ["A?", "B?"]
    assert [(c.text, c.source, c.row) for c in items[0].candidates] == [("a1", "m1", 1), ("a2", "m2", 3)]
    assert items[0].id != items[1].id and len(items[0].id) == 12  # stable hash of the prompt


def test_columns_parse_rejects_unknown_names():
    with pytest.raises(GrapeError, match="--columns"):
        Columns.parse("prompt=q,colour=red")


def test_alpaca_eval_long_layout_end_to_end():
    path = shared_file("alpaca_eval/model_outputs.jsonl")
    with pytest.raises(InputError, match="row 6503, field 'output': empty response"):
        load_instructions(path)  # the real file has one empty output
    items = load_instructions(path, on_error="skip")  # instruction/output/generator need no mapping
    assert len(items) == 805
    assert sum(len(i.candidates) for i in items) == 12075  # nothing lost
    skipped = [(c.row, c.skip_reason) for i in items for c in i.candidates if c.skip_reason]
    assert len(skipped) == 22 and skipped[0] == (6503, "empty_response")  # gemma-2b-it's empty outputs
    assert {c.source for i in items for c in i.candidates if c.skip_reason} == {"gemma-2b-it"}
    assert all(len({c.source for c in i.candidates}) == len(i.candidates) for i in items)
    assert len({c.source for i in items for c in i.candidates}) == 15


def test_rows_may_mix_prompt_strings_and_messages(tmp_path):
    rows = [{"id": "a", "prompt": "Hi", "candidates": ["x"]},
            {"id": "b", "messages": [{"role": "user", "content": "Yo"}], "candidates": ["y"]}]  # fmt: skip
    items = load_instructions(write_jsonl(tmp_path / "mixed.jsonl", rows))
    assert items[0].prompt == "Hi" and items[1].messages == [{"role": "user", "content": "Yo"}]


def test_columns_and_layout_are_told_from_every_row_not_the_first(tmp_path):
    grouped = [{"id": "a", "prompt": "1+1?", "candidates": ["2"]},  # no answer in the first row
               {"id": "b", "prompt": "2+2?", "candidates": ["4"], "answer": "4"}]  # fmt: skip
    items = load_instructions(write_jsonl(tmp_path / "grouped.jsonl", grouped))
    assert [i.answer for i in items] == [None, "4"]
    long = [{"instruction": "Say hi", "generator": "m1"},  # no output in the first row: still the long layout
            {"instruction": "Say hi", "output": "hello", "generator": "m2"},
            {"instruction": "Say bye", "output": "bye"}]  # fmt: skip
    items = load_instructions(write_jsonl(tmp_path / "long.jsonl", long), on_error="skip")
    assert [[(c.text, c.source, c.skip_reason) for c in i.candidates] for i in items] == [
        [(None, "m1", "missing_response"), ("hello", "m2", None)], [("bye", None, None)]]  # fmt: skip
    with pytest.raises(InputError, match="row 1, field 'output': missing response text"):
        load_instructions(tmp_path / "long.jsonl")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("answer=gold", "--columns answer=gold: no row has a column 'gold' \\(columns: id, prompt, candidates, answer"),
        ("id=qid", "--columns id=qid: no row has a column 'qid'"),
        ("text_key=txt", "--columns text_key=txt: no candidate has a key 'txt' \\(keys: text, source\\)"),
    ],
)
def test_columns_mapped_to_a_column_no_row_has_are_refused(tmp_path, spec, message):
    rows = [{"id": "a", "prompt": "1+1?", "candidates": [{"text": "2", "source": "m"}], "answer": "2"}]
    path = write_jsonl(tmp_path / "in.jsonl", rows)
    with pytest.raises(GrapeError, match=f"in.jsonl: {message}"):
        load_instructions(path, Columns.parse(spec), on_error="skip")
