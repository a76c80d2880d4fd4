"""Issue 14 #1: every input the Hugging Face ecosystem hands over reads, with grape's own row/field errors.

JSON arrays (AlpacaEval's `model_outputs.json`), CSV, Parquet, JSONL, `save_to_disk` directories, a
`datasets.Dataset` or a list of dicts in Python, and Hub ids (only resolved here, never fetched)."""

import csv
import json
import os
import subprocess
import sys

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from shared_data import shared_file

from grape.data.layout import load_instructions
from grape.data.pool import read_pool
from grape.data.read_rows import looks_like_hub_id, read_rows
from grape.errors import GrapeError, InputError
from grape.verification.verify import verify

LONG = [
    {"id": "001", "instruction": "Add 2 and 2.", "output": "4", "generator": "a"},
    {"id": "001", "instruction": "Add 2 and 2.", "output": "Four", "generator": "b"},
    {"id": "002", "instruction": "Say hi,\nthen stop.", "output": "hi", "generator": "a"},
]
EXPECTED = [("001", "Add 2 and 2.", [("4", "a"), ("Four", "b")]), ("002", "Say hi,\nthen stop.", [("hi", "a")])]


def summary(items):
    return [(i.id, i.prompt, [(c.text, c.source) for c in i.candidates]) for i in items]


def write_format(tmp_path, kind: str, rows: list[dict]):
    """The same rows in each format; the CSV quotes the text that holds a comma or a line break."""
    if kind == "jsonl":
        path = tmp_path / "in.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "json-array":
        path = tmp_path / "in.json"
        path.write_text(json.dumps(rows, indent=2))
    elif kind == "csv":
        path = tmp_path / "in.csv"
        with path.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    elif kind == "parquet":
        path = tmp_path / "in.parquet"
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif kind == "disk":
        path = tmp_path / "ds"
        datasets.Dataset.from_list(rows).save_to_disk(str(path))
    elif kind == "dataset":
        return datasets.Dataset.from_list(rows)
    else:
        return [dict(r) for r in rows]
    return path


FORMATS = ["jsonl", "json-array", "csv", "parquet", "disk", "dataset", "list"]


@pytest.mark.parametrize("kind", FORMATS)
def test_every_format_gives_the_same_instructions(tmp_path, kind):
    items = load_instructions(write_format(tmp_path, kind, LONG))
    assert summary(items) == EXPECTED  # "001" stays text in CSV too
    assert [c.row for i in items for c in i.candidates] == [1, 2, 3]


@pytest.mark.parametrize("kind", FORMATS)
def test_a_bad_row_is_named_by_its_row_and_field_in_every_format(tmp_path, kind):
    rows = [*LONG, {"id": "003", "instruction": "Count.", "output": "", "generator": "a"}]
    source = write_format(tmp_path, kind, rows)
    with pytest.raises(InputError) as info:
        load_instructions(source)
    assert (info.value.row, info.value.field, info.value.reason) == (4, "output", "empty response")
    name = {"dataset": "(datasets.Dataset)", "list": "(list of rows)"}.get(kind, str(source))
    assert str(info.value) == f"{name}, row 4, field 'output': empty response"
    skipped = load_instructions(source, on_error="skip")  # nothing lost
    assert [c.skip_reason for i in skipped for c in i.candidates] == [None, None, None, "empty_response"]


def test_json_array_elements_keep_their_own_keys(tmp_path):
    """A row without an id gets the prompt's hash, as in JSONL (load_dataset would have read id: null)."""
    path = tmp_path / "pool.json"
    path.write_text(json.dumps([{"id": 7, "prompt": "p", "candidates": ["x"]}, {"prompt": "q", "candidates": ["y"]}]))
    items = load_instructions(path)
    assert items[0].id == "7" and len(items[1].id) == 12 and items[1].prompt == "q"


def test_json_array_that_is_not_an_array_of_objects(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('[{"prompt": "p", "candidates": ["x"]}, 5]')
    with pytest.raises(InputError, match=r"bad.json, row 2: expected an object, got int"):
        load_instructions(path)
    path.write_text('[{"prompt": "p",\n "candidates": ["x"]},\n {"prompt": }]')
    with pytest.raises(InputError, match=r"bad.json: malformed JSON array \(Expecting value at line 3, column 13\)"):
        load_instructions(path)
    path.write_bytes(b'[\n{"prompt": "caf\xe9", "candidates": ["x"]}]')
    with pytest.raises(InputError, match=r"bad.json: not UTF-8 text \(byte 0xe9 on line 2\)"):
        load_instructions(path)


def test_a_json_file_of_one_object_a_line_is_still_jsonl(tmp_path):
    path = tmp_path / "lines.json"
    path.write_text(json.dumps(LONG[0]) + "\n" + "{broken\n")
    assert [r.row for r in read_rows(path)] == [1, 2]
    assert [r.data is None for r in read_rows(path)] == [False, True]


def test_csv_cells_are_text_as_written(tmp_path):
    path = tmp_path / "grouped.csv"
    path.write_text('id,prompt,answer,response\n007,"What is 6*7?",42,"6*7 = 42"\n008,Empty?,,\n')
    rows = [r.data for r in read_rows(path)]
    assert rows == [{"id": "007", "prompt": "What is 6*7?", "answer": "42", "response": "6*7 = 42"},
                    {"id": "008", "prompt": "Empty?", "answer": "", "response": ""}]  # fmt: skip
    with pytest.raises(InputError, match="grouped.csv, row 2, field 'response': empty response"):
        load_instructions(path)
    path.write_bytes(b'id,prompt\r\n1,"form\x0cfeed, CR LF\r\nin a cell"\r\n')  # a cell's line breaks as written
    assert [r.data for r in read_rows(path)] == [{"id": "1", "prompt": "form\x0cfeed, CR LF\r\nin a cell"}]


def test_a_csv_record_with_another_field_count_is_its_own_bad_row(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text('id,prompt,response\n1,Hi,Hello,extra\n2,Yo,Hey\n3,"Two\nlines"\n4,Bye,Ciao\n')
    with pytest.raises(InputError) as info:
        load_instructions(path)
    assert str(info.value) == f"{path}, row 1: 4 fields where the header has 3 (line 2)"
    rows = list(read_rows(path))  # nothing shifted into another column, nothing lost
    assert [(r.row, r.data, r.error) for r in rows] == [
        (1, None, "4 fields where the header has 3 (line 2)"),
        (2, {"id": "2", "prompt": "Yo", "response": "Hey"}, None),
        (3, None, "2 fields where the header has 3 (line 5)"),
        (4, {"id": "4", "prompt": "Bye", "response": "Ciao"}, None),
    ]
    items = load_instructions(path, on_error="skip")
    assert [(i.row, i.skip_reason) for i in items] == [(1, "malformed_row"), (2, None), (3, "malformed_row"), (4, None)]


def test_a_broken_csv_is_one_error(tmp_path):
    path = tmp_path / "quote.csv"
    path.write_text('prompt,response\np,r\nq,"s"t\n')
    with pytest.raises(InputError) as info:
        load_instructions(path, on_error="skip")  # the records after a broken quote cannot be told apart
    assert str(info.value) == f"{path}: cannot read as CSV (line 3: ',' expected after '\"')"
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(InputError, match="empty CSV file"):
        load_instructions(tmp_path / "empty.csv")


def test_dataset_dict_needs_a_split_when_it_has_several(tmp_path):
    both = datasets.DatasetDict(
        {"train": datasets.Dataset.from_list(LONG), "test": datasets.Dataset.from_list(LONG[:1])}
    )
    with pytest.raises(InputError, match=r"several splits \['train', 'test'\]: choose one with --split"):
        load_instructions(both)
    assert len(load_instructions(both, split="test")[0].candidates) == 1
    with pytest.raises(InputError, match="no split 'dev'"):
        load_instructions(both, split="dev")


def test_other_python_objects_are_refused_in_one_line():
    with pytest.raises(GrapeError, match="cannot read dict as input: give a path, a Hub dataset id"):
        load_instructions({"prompt": "p"})


def test_a_stage_takes_a_dataset_or_a_list(tmp_path):
    """verify (like generate and score) reads through the one reader: rows in memory need no file."""
    rows = [{"id": "q", "prompt": "2+2?", "answer": "4", "candidates": [{"text": "4", "source": "a"},
                                                                      {"text": "5", "source": "b"}]}]  # fmt: skip
    for source in (rows, datasets.Dataset.from_list(rows)):
        out, counts = verify(source, verifier="exact")
        assert [c["correct"] for c in out[0]["candidates"]] == [True, False]
        assert (counts["a"].correct, counts["b"].incorrect) == (1, 1)
    assert read_pool(rows)[0]["candidates"] == [{"text": "4", "source": "a"}, {"text": "5", "source": "b"}]


def test_what_counts_as_a_hub_id():
    assert looks_like_hub_id("tatsu-lab/alpaca_eval") and looks_like_hub_id("gsm8k")
    assert not looks_like_hub_id("missing.jsonl") and not looks_like_hub_id("./local/dir")
    assert not looks_like_hub_id("/abs/path") and not looks_like_hub_id("a/b/c") and not looks_like_hub_id("data.CSV")


def grape_cli(tmp_path, *args):
    """The installed CLI in a fresh process, offline, with an empty Hugging Face cache."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = "import sys; from grape.cli import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=120)


def test_a_hub_id_is_resolved_offline_into_one_line(tmp_path):
    out = tmp_path / "out.jsonl"
    run = grape_cli(tmp_path, "verify", "openai/gsm8k", "--subset", "main", "--split", "test", "-o", str(out))
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert lines == [
        "error: openai/gsm8k: no such file or directory, and it could not be reached on the Hugging Face Hub "
        "offline (HF_HUB_OFFLINE or HF_DATASETS_OFFLINE is set, and it is not in the local cache)"
    ]
    assert not out.exists()
    run = grape_cli(tmp_path, "verify", str(tmp_path / "missing.jsonl"), "-o", str(out))  # a file stays a file
    assert run.stderr.strip().splitlines() == [f"error: {tmp_path / 'missing.jsonl'}: no such file or directory"]


def test_alpaca_eval_as_its_own_json_array(tmp_path):
    """AlpacaEval publishes `model_outputs.json`, one JSON array: its first 6510 rows read in the long
    layout like the same rows as JSONL, and the empty output keeps its row number (6503)."""
    lines = shared_file("alpaca_eval/model_outputs.jsonl").read_text(encoding="utf-8").splitlines()[:6510]
    array = tmp_path / "model_outputs.json"
    array.write_text(json.dumps([json.loads(line) for line in lines], indent=2), encoding="utf-8")
    same = tmp_path / "model_outputs.jsonl"
    same.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match="model_outputs.json, row 6503, field 'output': empty response"):
        load_instructions(array, layout="long")
    items = load_instructions(array, layout="long", on_error="skip")
    assert summary(items) == summary(load_instructions(same, layout="long", on_error="skip"))
    assert len(items) == 805 and sum(len(i.candidates) for i in items) == 6510
    assert [(c.row, c.skip_reason) for i in items for c in i.candidates if c.skip_reason] == [(6503, "empty_response")]
    assert items[0].candidates[0].source == json.loads(lines[0])["generator"]


@pytest.mark.parametrize("kind", ["csv", "json-array"])
def test_grape_score_reads_csv_and_json_arrays(tmp_path, tiny_model_dir, kind, capsys):
    from grape.cli import main

    source, output = write_format(tmp_path, kind, LONG), tmp_path / "scores.parquet"
    args = ["score", str(source), "-o", str(output), "--model", str(tiny_model_dir), "--device", "cpu"]
    assert main([*args, "--dtype", "float32"]) == 0, capsys.readouterr().err
    rows = pq.read_table(output).to_pylist()
    assert [(r["id"], r["source"], r["row"], r["status"]) for r in rows] == [
        ("001", "a", 1, "scored"), ("001", "b", 2, "scored"), ("002", "a", 3, "scored"),
    ]  # fmt: skip
    assert all(r["n_tokens"] > 0 and r["sum_logprob"] < 0 for r in rows)
