"""Issue 19 #5: bytes that are not UTF-8 and JSON strings that are not Unicode (a lone surrogate) cost
their own row only: skipped with their reason, or one error line naming file, row and field."""

import json

import pyarrow.parquet as pq
import pytest

from grape.cli import main
from grape.data.layout import load_instructions
from grape.data.read_rows import read_rows
from grape.data.surrogates import first_lone_surrogate, without_lone_surrogates
from grape.data.tables import read_table_rows
from grape.errors import InputError

GOOD = json.dumps({"id": "ok", "prompt": "p", "candidates": [{"text": "fine", "source": "s"}]})
# (line as bytes, field, skip reason of the row or of its first candidate); each goes in as row 2
CASES = [
    (b'{"id": "a", "prompt": "p", "candidates": [{"text": "a \\ud800 b"}]}', "candidates[0].text", "lone_surrogate"),
    (b'{"id": "b", "prompt": "x \\udfff", "candidates": [{"text": "t"}]}', "prompt", "lone_surrogate"),
    (b'{"id": "c", "prompt": "p", "candidates": [{"text": "t", "source": "\\ud83d"}]}', "candidates[0].source",
     "lone_surrogate"),
    (b'{"id": "d\\ud800", "prompt": "p", "candidates": [{"text": "t"}]}', "id", "lone_surrogate"),
    (b'{"id": "e", "prompt": "p", "answer": {"x": ["\\ud800"]}, "candidates": [{"text": "t"}]}', "answer.x[0]",
     "lone_surrogate"),
    (b'{"id": "f", "prompt": [{"role": "user", "content": "\\ud800"}], "candidates": [{"text": "t"}]}',
     "prompt[0].content", "lone_surrogate"),
    (b'{"id": "g", "prompt": "caf\xe9", "candidates": [{"text": "t"}]}', None, "invalid_utf8"),
    (b'{"id": "h", "prompt": "p", "candidates": [{"text": "\xff\xfe"}]}', None, "invalid_utf8"),
]  # fmt: skip


def write_input(path, *lines: bytes):
    path.write_bytes(b"".join(line + b"\n" for line in (GOOD.encode(), *lines)))
    return path


@pytest.mark.parametrize(("line", "field", "reason"), CASES, ids=[f"{c[2]}-{i}" for i, c in enumerate(CASES)])
def test_fail_fast_names_file_row_and_field(tmp_path, line, field, reason):
    path = write_input(tmp_path / "in.jsonl", line, GOOD.replace('"ok"', '"after"').encode())
    with pytest.raises(InputError) as info:
        load_instructions(path)
    assert (info.value.file, info.value.row, info.value.field) == (str(path), 2, field)
    assert ("lone surrogate" if reason == "lone_surrogate" else "not UTF-8") in str(info.value)
    assert "\n" not in str(info.value)
    str(info.value).encode("utf-8")  # the message itself can be printed


def test_skip_keeps_every_row_and_candidate_with_its_reason(tmp_path):
    path = write_input(tmp_path / "in.jsonl", *(line for line, _, _ in CASES))
    items = load_instructions(path, on_error="skip")
    assert [item.row for item in items] == list(range(1, 2 + len(CASES)))
    assert items[0].skip_reason is None and items[0].candidates[0].skip_reason is None
    for item, (_, field, reason) in zip(items[1:], CASES, strict=True):
        got = item.candidates[0].skip_reason if field and field.startswith("candidates") else item.skip_reason
        assert got == reason, item
        texts = [item.prompt_text, item.id, *(text for c in item.candidates for text in (c.text, c.source))]
        for text in texts:
            (text or "").encode("utf-8")  # what goes on to the output is valid text: U+FFFD in place
    assert items[1].candidates[0].text == "a \ufffd b"


def test_a_bad_byte_costs_its_row_only_in_the_long_layout_too(tmp_path):
    path = tmp_path / "long.jsonl"
    rows = [b'{"instruction": "p", "output": "one", "generator": "m1"}',
            b'{"instruction": "p", "output": "t\\ud800", "generator": "m2"}',
            b'{"instruction": "p", "output": "caf\xe9", "generator": "m3"}',
            b'{"instruction": "p", "output": "four", "generator": "m4"}']  # fmt: skip
    path.write_bytes(b"\n".join(rows) + b"\n")
    items = load_instructions(path, on_error="skip")
    assert [(c.source, c.skip_reason) for c in items[0].candidates] == [("m1", None), ("m2", "lone_surrogate"),
                                                                        ("m4", None)]  # fmt: skip
    assert (items[1].row, items[1].skip_reason) == (3, "invalid_utf8")
    with pytest.raises(InputError, match=r"row 2, field 'output': lone surrogate \\ud800 at character 2"):
        load_instructions(path)


def test_rows_are_counted_in_lines_after_a_bad_one(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\xff\n\n{"a": 2}\n')  # a byte-order mark, a bad byte, a blank line
    rows = list(read_rows(path))
    assert [(r.row, r.data, r.reason if r.data is None else None) for r in rows] == [
        (1, {"a": 1}, None), (2, None, "invalid_utf8"), (4, {"a": 2}, None),
    ]  # fmt: skip
    assert rows[1].error == "not UTF-8 text (byte 0xff at byte 1 of the line)"


def test_a_table_with_a_bad_byte_names_its_row(tmp_path):
    path = tmp_path / "scores.jsonl"
    path.write_bytes(b'{"id": "a"}\n{"id": "\xe9"}\n')
    with pytest.raises(InputError, match=r"scores.jsonl, row 2: not UTF-8 text \(byte 0xe9"):
        read_table_rows(path)


def test_lone_surrogates_are_found_and_replaced_anywhere():
    value = {"a": ["ok", {"b": "x\ud800y"}], "k\udc00": 1}
    assert first_lone_surrogate(value) == ("a[1].b", "lone surrogate \\ud800 at character 2 (not valid Unicode text)")
    assert first_lone_surrogate({"k\udc00": 1})[0] == "k\ufffd"
    assert first_lone_surrogate({"ok": "\U0001f600", "n": 3, "none": None}) is None  # a real emoji is fine
    assert without_lone_surrogates(value) == {"a": ["ok", {"b": "x\ufffdy"}], "k\ufffd": 1}


def score_cli(tmp_path, model_dir, on_error: str, capsys):
    source = write_input(tmp_path / "in.jsonl", CASES[0][0], CASES[6][0], GOOD.replace('"ok"', '"z"').encode())
    output = tmp_path / "scores.parquet"
    args = ["score", str(source), "-o", str(output), "--model", str(model_dir), "--on-error", on_error]
    code = main([*args, "--dtype", "float32", "--device", "cpu"])
    return code, output, source, capsys.readouterr().err


def test_grape_score_skips_bad_bytes_row_by_row(tmp_path, tiny_model_dir, capsys):
    code, output, _, err = score_cli(tmp_path, tiny_model_dir, "skip", capsys)
    assert code == 0, err
    rows = pq.read_table(output).to_pylist()
    assert [(r["id"], r["row"], r["status"]) for r in rows] == [
        ("ok", 1, "scored"), ("a", 2, "skipped:lone_surrogate"), (None, 3, "skipped:invalid_utf8"), ("z", 4, "scored"),
    ]  # fmt: skip
    assert rows[1]["response"] == "a \ufffd b"


def test_grape_score_fails_on_a_bad_byte_in_one_line(tmp_path, tiny_model_dir, capsys):
    code, output, source, err = score_cli(tmp_path, tiny_model_dir, "fail", capsys)
    assert code == 2
    assert err.strip().splitlines() == [
        f"error: {source}, row 2, field 'candidates[0].text': lone surrogate \\ud800 at character 3 "
        "(not valid Unicode text)"
    ]
    assert not output.exists()
