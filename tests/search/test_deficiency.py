"""Deficiency: the gold answers' fit under the current model (grape's scorer), the worst-fitting share of each
group kept, every other row listed with its fit."""

import pytest
from reference import naive_sum_logprob

from grape.cli import main
from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.search.deficiency import CALLS, NO_CALL, deficiency, deficient_indices


def test_the_lowest_fit_share_of_each_group_in_input_order():
    groups = [CALLS, CALLS, NO_CALL, CALLS, NO_CALL, CALLS, CALLS, CALLS, CALLS, NO_CALL]
    fits = [-1.0, -3.0, -2.0, -0.5, -4.0, -3.0, -2.5, -0.1, -0.2, -1.0]
    # calls: 7 rows, int(7 * 0.3) = 2: -3.0 (row 1) and -3.0 (row 5, the later of equals); no call: int(0.9) = 0
    assert deficient_indices(groups, fits, 0.3) == [1, 5]
    # 0.5: calls int(3.5) = 3 (-3.0, -3.0, -2.5), no call int(1.5) = 1 (-4.0)
    assert deficient_indices(groups, fits, 0.5) == [1, 4, 5, 6]
    assert deficient_indices(groups, fits, 1.0) == list(range(10))
    assert deficient_indices([CALLS] * 10, [0.0] * 10, 0.3) == [0, 1, 2]  # int(3.0), despite 10 * 0.3 < 3


def _reference_fit(tokenizer, model, row) -> float:
    """The mean log-prob of the gold answer's tokens, end-of-turn marker included, from the chat template's text."""
    prompt = tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt)["input_ids"]
    whole = tokenizer(prompt + row["completion"] + "<|im_end|>")["input_ids"]
    assert whole[: len(prompt_ids)] == prompt_ids
    response = whole[len(prompt_ids) :]
    return naive_sum_logprob(model, prompt_ids, response) / len(response)


def test_the_stage_keeps_the_worst_fits_per_group_and_lists_the_rest(tool_rows, tiny_smol, tmp_path):
    rows = read_table_rows(tool_rows)
    rows.append({**rows[1], "id": "blank", "completion": None})
    source = write_rows(rows, tmp_path / "rows.jsonl")
    (tmp_path / "rows.jsonl.meta.json").write_text((tool_rows.parent / "rows.jsonl.meta.json").read_text())
    out, summary = deficiency(source, tmp_path / "deficient.jsonl", fraction=0.5)
    fits = {r["id"]: _reference_fit(tiny_smol.tokenizer, tiny_smol.model, r) for r in rows[:8]}
    calls = sorted((fits[r["id"]], r["id"]) for r in rows[:8] if r["answer"])
    no_call = sorted((fits[r["id"]], r["id"]) for r in rows[:8] if not r["answer"])
    expected = {i for _, i in calls[:3]} | {i for _, i in no_call[:1]}
    assert [r["id"] for r in out] == [r["id"] for r in rows if r["id"] in expected]  # input order
    given = {r["id"]: r for r in rows}
    for row in out:
        assert row["fit"] == pytest.approx(fits[row["id"]], abs=1e-4)
        assert row["group"] == (CALLS if row["answer"] else NO_CALL)
        assert {k: v for k, v in row.items() if k not in ("fit", "group")} == given[row["id"]]  # the row as it was
    assert summary["kept_by_group"] == {CALLS: 3, NO_CALL: 1} and summary["scored"] == 8
    meta = read_sidecar(tmp_path / "deficient.jsonl")
    left = {e["id"]: e for e in meta["left_out"]}
    assert set(left) == {r["id"] for r in rows} - expected and left["blank"]["reason"].startswith("no gold text")
    assert all(e["fit"] == pytest.approx(fits[i], abs=1e-4) for i, e in left.items() if i != "blank")
    assert meta["score_settings"] == read_sidecar(tool_rows)["score_settings"]  # the rows' model, chat, eos
    assert meta["score_settings"]["template"] == "chat"


def test_the_command_line_and_its_errors(tool_rows, tmp_path):
    output = tmp_path / "d.jsonl"
    assert main(["itool", "deficiency", str(tool_rows), "-o", str(output), "--fraction", "1"]) == 0
    assert len(read_table_rows(output)) == 8 and read_sidecar(output)["settings"]["fraction"] == 1.0
    with pytest.raises(GrapeError, match=r"fraction 0: keep a share"):
        deficiency(tool_rows, None, fraction=0)
    bare = write_rows(read_table_rows(tool_rows), tmp_path / "bare.jsonl")  # no sidecar: no model named
    with pytest.raises(GrapeError, match="no model to measure the fit with: give --model"):
        deficiency(bare)
