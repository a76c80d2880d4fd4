"""Every bad input gets one clear error naming file, row and field; with skip, nothing is lost."""

import json

import pytest

from grape.data.layout import load_instructions
from grape.errors import InputError

GOOD = {"id": "ok", "prompt": "p", "candidates": [{"text": "t", "source": "s"}]}
CASES = [  # (line, field, skip reason)
    ('{"id": "a", "prompt": "p", "candidates": [{"text": "t"}]', None, "malformed_row"),
    (json.dumps({"id": "b", "candidates": [{"text": "t"}]}), "prompt", "missing_prompt"),
    (json.dumps({"id": "c", "prompt": 5, "candidates": [{"text": "t"}]}), "prompt", "invalid_prompt"),
    (json.dumps({"id": "d", "prompt": "p"}), "candidates", "missing_candidates"),
    (json.dumps({"id": "e", "prompt": "p", "candidates": []}), "candidates", "empty_candidates"),
    (json.dumps({"id": "f", "prompt": "p", "candidates": "t"}), "candidates", "invalid_candidates"),
    (json.dumps({"id": "g", "prompt": "p", "candidates": [{"text": "  "}]}), "candidates[0].text", "empty_response"),
    (json.dumps({"id": "h", "prompt": "p", "candidates": [{"text": 3}]}), "candidates[0].text", "invalid_response"),
    (json.dumps({"id": "i", "prompt": "p", "candidates": [{"source": "s"}]}), "candidates[0].text", "missing_response"),
    (json.dumps({"id": ["x"], "prompt": "p", "candidates": [{"text": "t"}]}), "id", "invalid_id"),
    (json.dumps(GOOD), "id", "duplicate_id"),
    ("[1, 2]", None, "malformed_row"),
]


@pytest.mark.parametrize(("line", "field", "reason"), CASES, ids=[c[2] + str(i) for i, c in enumerate(CASES)])
def test_fail_fast_names_file_row_and_field(tmp_path, line, field, reason):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + line + "\n")
    with pytest.raises(InputError) as info:
        load_instructions(path)
    error = info.value
    assert (error.file, error.row, error.field) == (str(path), 2, field)
    assert str(error).startswith(f"{path}, row 2")


def test_skip_keeps_every_row_with_its_reason(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps(GOOD) + "\n" + "\n".join(line for line, _, _ in CASES) + "\n")
    items = load_instructions(path, on_error="skip")
    assert len(items) == 1 + len(CASES)
    for item, (_, field, reason) in zip(items[1:], CASES, strict=True):
        reasons = {item.skip_reason} | {c.skip_reason for c in item.candidates}
        assert reason in reasons
        # the field that fail-fast names is kept too (read_pool's errors name it)
        marked = item if item.skip_reason == reason else next(c for c in item.candidates if c.skip_reason == reason)
        assert marked.skip_field == field


def test_unreadable_and_unknown_files(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        load_instructions(tmp_path / "missing.jsonl")
    (tmp_path / "x.xlsx").write_text("a,b\n")
    with pytest.raises(InputError, match="unknown format"):
        load_instructions(tmp_path / "x.xlsx")
    (tmp_path / "bad.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="Parquet"):
        load_instructions(tmp_path / "bad.parquet")
    (tmp_path / "latin.jsonl").write_bytes('{"prompt": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InputError, match="UTF-8"):
        load_instructions(tmp_path / "latin.jsonl")


def test_long_layout_conflicting_prompt_for_one_id(tmp_path):
    path = tmp_path / "long.jsonl"
    rows = [{"id": 1, "prompt": "A", "response": "x"}, {"id": 1, "prompt": "B", "response": "y"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match="row 2, field 'prompt'"):
        load_instructions(path)
    items = load_instructions(path, on_error="skip")
    assert [c.skip_reason for c in items[0].candidates] == [None, "prompt_mismatch"]


WRONG_TYPE_ROWS = [
    {"id": "a", "prompt": "1+1?", "answer": "2", "candidates": [{"text": "2", "source": "m"}]},
    {"id": "b", "prompt": "2+2?", "answer": "4", "candidates": [{"text": "4"}, {"text": 7}]},
]


def test_a_pool_candidate_of_the_wrong_type_is_refused_not_nulled(tmp_path, capsys):
    """`grape verify` used to write such a candidate's text as null (the value lost); now it is a one-line error,
    and an existing output stays as it was."""
    from grape.cli import main
    from grape.data.tables import write_rows

    pool, out = write_rows(WRONG_TYPE_ROWS, tmp_path / "pool.jsonl"), tmp_path / "verified.jsonl"
    out.write_text("kept\n")
    assert main(["verify", str(pool), "-o", str(out), "--verifier", "number"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pool.jsonl, row 2, field 'candidates[1].text': invalid response" in err
    assert out.read_text() == "kept\n"


@pytest.mark.parametrize(
    ("candidate", "reason"),
    [({"text": 7}, "invalid_response"), ({"text": "4", "source": ["m"]}, "invalid_source"), (7, "invalid_candidate")],
)
def test_with_skip_a_wrong_type_candidate_skips_its_row_as_given_and_is_reported(tmp_path, capsys, candidate, reason):
    """With --on-error skip such a candidate used to be written with a null text (and a null source): now its row
    is a skipped row like any other (not judged, its reason in `skip_reason`, counted on the screen), and the
    candidate is written as the input gave it."""
    from grape.cli import main
    from grape.data.pool import read_pool
    from grape.data.tables import read_table_rows, write_rows

    rows = [WRONG_TYPE_ROWS[0], {**WRONG_TYPE_ROWS[1], "candidates": [{"text": "4"}, candidate]}]
    pool, out = write_rows(rows, tmp_path / "pool.jsonl"), tmp_path / "verified.jsonl"
    assert [r.get("skip_reason") for r in read_pool(pool, on_error="skip")] == [None, reason]
    assert main(["verify", str(pool), "-o", str(out), "--verifier", "number", "--on-error", "skip"]) == 0
    assert "1 row(s) skipped, not judged (first: id 'b', " + reason.replace("_", " ") in capsys.readouterr().err
    first, second = read_table_rows(out)
    assert first["candidates"][0]["correct"] is True
    assert second["skip_reason"] == reason and second["candidates"] == [{"text": "4", "source": None}, candidate]
    again = tmp_path / "again.parquet"  # Parquet cannot hold 7 beside strings: one line, nothing written
    assert main(["verify", str(pool), "-o", str(again), "--verifier", "number", "--on-error", "skip"]) == 2
    assert "again.parquet: cannot write as Parquet" in capsys.readouterr().err and not again.exists()


@pytest.mark.parametrize(
    ("row", "field", "reason"),
    [
        ({"id": "b", "prompt": 5, "candidates": [{"text": "t"}]}, "prompt", "invalid prompt"),
        ({"id": ["b"], "prompt": "p", "candidates": [{"text": "t"}]}, "id", "invalid id"),
        ({"id": "b", "prompt": "p", "candidates": "t"}, "candidates", "invalid candidates"),
        ({"id": "b", "prompt": "p\ud800", "candidates": [{"text": "t"}]}, "prompt", "lone surrogate"),
        ({"id": "a", "prompt": "p", "candidates": [{"text": "t"}]}, "id", "duplicate id"),
    ],
    ids=["prompt", "id", "candidates", "surrogate", "duplicate"],
)
@pytest.mark.parametrize("stage", ["verify", "generate", "eval", "decode"])
def test_a_malformed_row_is_named_by_file_row_and_field_in_every_stage_that_reads_a_pool(
    tmp_path, capsys, row, field, reason, stage
):
    """read_pool's errors named the file and the row, not the field (the layout's reader knew it)."""
    from grape.cli import main

    pool, out = tmp_path / "pool.jsonl", tmp_path / "out.jsonl"
    first = {"id": "a", "prompt": "p", "answer": "1", "candidates": [{"text": "t"}]}
    pool.write_text(json.dumps(first) + "\n" + json.dumps(row) + "\n")
    out.write_text("kept\n")
    argv = {"verify": ["verify", str(pool), "-o", str(out), "--verifier", "number"],
            "generate": ["generate", str(pool), "-o", str(out), "--model", "m"],
            "eval": ["eval", "--data", str(pool), "-o", str(out), "--model", "no-such-model"],
            "decode": ["decode", str(pool), "-o", str(out), "--method", "greedy", "--model", "no-such-model"],
            }[stage]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"pool.jsonl, row 2, field '{field}': {reason}" in err, err
    assert out.read_text() == "kept\n"


def test_a_long_layout_response_of_the_wrong_type_names_its_own_row_and_column(tmp_path):
    from grape.data.pool import read_pool

    path = tmp_path / "long.jsonl"
    rows = [{"id": 1, "prompt": "A", "output": "x"}, {"id": 1, "prompt": "A", "output": 7}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError) as caught:
        read_pool(path)
    assert (caught.value.row, caught.value.field) == (2, "output")
    (skipped,) = read_pool(path, on_error="skip")
    assert skipped["skip_reason"] == "invalid_response"
    assert skipped["candidates"] == [{"text": "x", "source": None}, {"text": 7, "source": None}]


def test_a_long_layout_source_of_the_wrong_type_is_reported_not_nulled(tmp_path):
    """A non-string generator name used to be read as no name at all, silently: now it is refused as the grouped
    layout refuses it, and with --on-error skip the row keeps it as given."""
    from grape.data.pool import read_pool

    path = tmp_path / "long.jsonl"
    rows = [{"id": 1, "prompt": "A", "output": "x", "generator": "m1"},
            {"id": 1, "prompt": "A", "output": "y", "generator": {"name": "m2"}}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(InputError, match=r"long.jsonl, row 2, field 'generator': invalid source") as caught:
        read_pool(path)
    assert (caught.value.row, caught.value.field) == (2, "generator")
    (skipped,) = read_pool(path, on_error="skip")
    assert skipped["skip_reason"] == "invalid_source"
    assert skipped["candidates"] == [{"text": "x", "source": "m1"}, {"text": "y", "source": {"name": "m2"}}]


def test_an_empty_prompt_list_is_refused_like_an_empty_table(tmp_path):
    from grape.data.pool import read_pool

    lines = tmp_path / "prompts.txt"
    lines.write_text("\n  \n")
    with pytest.raises(InputError, match="prompts.txt: no prompts in the file"):
        read_pool(lines)
