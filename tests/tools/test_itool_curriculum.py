"""iTool's warm-up order: each row's difficulty from the data (gold calls, tools offered, required arguments),
the rows from easy to hard, and every row accounted for."""

import pytest
from tool_rows import TRAJECTORIES

from grape.cli import main
from grape.data.tables import read_sidecar, read_table_rows, write_rows, write_sidecar
from grape.errors import GrapeError, InputError
from grape.tools.curriculum import curriculum, difficulty, easy_to_hard
from grape.tools.prepare import prepare


@pytest.fixture
def rows_file(tmp_path):
    rows, _ = prepare(write_rows(TRAJECTORIES, tmp_path / "conversations.jsonl"))
    rows.append({**rows[1], "id": "no-text", "completion": None})  # a row with nothing to train on
    rows.append({**rows[1], "id": "no-key", "answer": None})  # a row without an answer key
    path = write_rows(rows, tmp_path / "rows.jsonl")
    write_sidecar(path, {"stage": "tools-prepare", "score_settings": {"model": "m", "template": "chat", "eos": True}})
    return path


def test_difficulty_counts_calls_tools_and_required_arguments():
    tools = [{"name": "f", "parameters": {"type": "dict", "properties": {"a": {}, "b": {}}}}, {"name": "g"}]
    row = {"answer": [{"f": {"a": [1], "b": ["x", ""]}}, {"f": {"a": [2], "b": ["y"]}}], "tools": tools}
    assert difficulty(row) == {"calls": 2, "tools": 2, "arguments": 3}  # b may be left out of the first call
    assert difficulty({"answer": [], "function": tools[:1]}) == {"calls": 0, "tools": 1, "arguments": 0}


def test_easy_to_hard_sorts_by_the_named_counts_then_input_order():
    counts = [{"calls": 1, "tools": 2, "arguments": 1}, {"calls": 1, "tools": 1, "arguments": 5},
              {"calls": 0, "tools": 3, "arguments": 0}, {"calls": 1, "tools": 1, "arguments": 5}]  # fmt: skip
    assert easy_to_hard(counts, ["calls", "tools", "arguments"]) == [2, 1, 3, 0]
    assert easy_to_hard(counts, ["arguments"]) == [2, 0, 1, 3]


def test_the_rows_come_out_from_easy_to_hard_and_the_others_are_listed(rows_file, tmp_path):
    out, summary = curriculum(rows_file, tmp_path / "ordered.jsonl")
    # (calls, tools, arguments): w7 (0,1,0) w4 (0,2,0) w2 (1,1,1) w5 (1,1,3) w3 (1,2,1) w6 (1,3,2) w1 (2,3,2) w8 (3,2,3)
    order = ["w7", "w4", "w2", "w5", "w3", "w6", "w1", "w8"]
    assert [r["id"] for r in out] == [f"{i}/turn1" for i in order]
    assert out[3]["difficulty"] == {"calls": 1, "tools": 1, "arguments": 3}
    assert read_table_rows(tmp_path / "ordered.jsonl") == out
    meta = read_sidecar(tmp_path / "ordered.jsonl")
    assert summary == {**summary, "rows": 10, "ordered": 8, "left_out": 2}
    assert [(e["id"], e["row"]) for e in meta["left_out"]] == [("no-text", 9), ("no-key", 10)]
    assert meta["score_settings"] == {"model": "m", "template": "chat", "eos": True}  # grape sft's defaults
    tools_first, _ = curriculum(rows_file, None, order=["tools", "calls", "arguments"])
    assert [r["id"].split("/")[0] for r in tools_first] == ["w7", "w2", "w5", "w4", "w3", "w8", "w6", "w1"]


def test_the_command_line_and_its_errors(rows_file, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("order: [arguments]\n")
    output = tmp_path / "o.jsonl"
    assert main(["itool", "curriculum", str(rows_file), "-o", str(output), "--config", str(config)]) == 0
    assert read_sidecar(output)["settings"]["order"] == ["arguments"]
    assert main(["itool", "curriculum", str(rows_file), "-o", str(output), "--order", "calls,tools"]) == 0
    assert read_sidecar(output)["settings"]["order"] == ["calls", "tools"]
    with pytest.raises(GrapeError, match="give one or more of calls, tools, arguments"):
        curriculum(rows_file, None, order=["size"])
    with pytest.raises(GrapeError, match="named twice"):
        curriculum(rows_file, None, order=["calls", "calls"])
    bad = write_rows([{"id": "x", "completion": "f()", "answer": 3, "tools": []}], tmp_path / "bad.jsonl")
    with pytest.raises(InputError, match=r"bad.jsonl.*row 1.*answer"):
        curriculum(bad)
