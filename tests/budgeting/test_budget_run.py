"""`grape budget` end to end on a tiny model: f = 0 runs DPO from the base model and no SFT, f = 1 SFT and no DPO,
a share between runs DPO from the SFT model; one row per cell; a re-run skips finished cells and, in a cell cut
short, the stages that finished."""

from __future__ import annotations

import copy
import json

import pytest
import yaml

import grape.budgeting.run
import grape.training.sft
from grape.budgeting.cell import identity_changes
from grape.budgeting.settings import BudgetSettings
from grape.cli import main
from grape.config import settings_dict
from grape.data.tables import read_table_rows, write_rows
from grape.errors import GrapeError
from grape.evaluation.settings import EvalSettings
from grape.training.settings import DPOSettings, SFTSettings

SFT_POOL = [{"id": f"q{i}", "prompt": f"What is {i} + 1?", "completion": f"{i} + 1 = {i + 1}. The answer is {i + 1}."}
            for i in range(4)]  # fmt: skip
PAIRS = [{"id": f"q{i}", "prompt": f"What is {i} + 1?", "chosen": f"The answer is {i + 1}.",
          "rejected": f"The answer is {i + 2}."} for i in range(2, 6)]  # fmt: skip
TEST = [
    {"id": "t1", "prompt": "What is 7 + 1?", "answer": "8"},
    {"id": "t2", "prompt": "What is 8 + 1?", "answer": "9"},
]
FAST = {"max_steps": 1, "batch_size": 2, "lr": 1e-2, "precision": "fp32", "logging_steps": 1, "device": "cpu"}


def test_budget_cells_train_what_their_share_buys_and_a_rerun_skips_what_finished(tiny_smol_dir, tmp_path, monkeypatch):
    sel, pairs = write_rows(SFT_POOL, tmp_path / "sel.jsonl"), write_rows(PAIRS, tmp_path / "pairs.jsonl")
    test, heldout = write_rows(TEST, tmp_path / "test.jsonl"), write_rows(SFT_POOL[:2], tmp_path / "dev.jsonl")
    config = tmp_path / "budget.yaml"
    evaluation = {"verifier": "number", "max_new_tokens": 4, "device": "cpu"}
    config.write_text(yaml.safe_dump({"sft": FAST, "dpo": FAST, "eval": evaluation}))
    out = tmp_path / "out"
    command = ["budget", str(sel), str(pairs), "--data", str(test), "-o", str(out), "--config", str(config),
               "--budget", "2", "--shares", "0,0.5,1", "--model", str(tiny_smol_dir),
               "--heldout", str(heldout)]  # fmt: skip
    assert main(command) == 0
    rows = read_table_rows(out / "results.jsonl")
    assert [(r["share"], r["seed"], r["n_sft"], r["n_pairs"], r["trained"]) for r in rows] == [
        (0.0, 0, 0, 2, "dpo"), (0.5, 0, 1, 1, "sft+dpo"), (1.0, 0, 2, 0, "sft")]  # fmt: skip
    only_dpo, both, only_sft = (out / f"share-{f}-seed-0" for f in ("0", "0.5", "1"))
    assert (only_dpo / "dpo" / "grape-dpo.json").is_file() and not (only_dpo / "sft").exists()
    assert (only_sft / "sft" / "grape-sft.json").is_file() and not (only_sft / "dpo").exists()
    assert not list(out.rglob("checkpoints"))  # a finished stage's checkpoints are gone: nothing resumes it
    assert yaml.safe_load((only_dpo / "dpo" / "grape-dpo.yaml").read_text())["model"] == str(tiny_smol_dir)
    assert yaml.safe_load((both / "dpo" / "grape-dpo.yaml").read_text())["model"] == str(both / "sft")
    drawn_sft, drawn_pairs = read_table_rows(both / "sft.jsonl"), read_table_rows(both / "pairs.jsonl")
    assert len(drawn_sft) == len(drawn_pairs) == 1 and drawn_sft[0]["id"] != drawn_pairs[0]["id"]
    for row in rows:
        assert row["items"] == 2 and 0 <= row["ci95"][0] <= row["ci95"][1] <= 1
        assert row["format_rate"] is not None and row["heldout_mean_logprob"] < 0 and row["heldout_rows"] == 2
        assert row["model"] == str(out / row["cell"] / ("sft" if row["trained"] == "sft" else "dpo"))
    assert rows[1]["sft"]["steps"] == 1 and rows[1]["dpo"]["pairs"] == 1
    summary = (out / "summary.md").read_text()
    assert "| 0 | 0 | 2 | 1 |" in summary and "| 0.5 | 1 | 1 | 1 |" in summary and "| 1 | 2 | 0 | 1 |" in summary

    def must_not_run(*args, **kwargs):
        raise AssertionError("a finished cell or stage ran again")

    monkeypatch.setattr(grape.budgeting.run, "run_cell", must_not_run)
    assert main(command) == 0  # every cell finished: nothing runs
    assert read_table_rows(out / "results.jsonl") == rows
    monkeypatch.undo()
    (only_sft / "cell.json").unlink()  # cut short after its sft
    monkeypatch.setattr(grape.training.sft, "sft", must_not_run)
    assert main(command) == 0
    assert read_table_rows(out / "results.jsonl")[2]["sft"] == rows[2]["sft"]  # the finished sft was reused
    started = json.loads((only_sft / "cell.started.json").read_text())
    assert started["identity"]["share"] == 1.0 and started["identity"]["seed"] == 0


def test_a_cell_begun_with_other_settings_stops_the_run_naming_them(tmp_path):
    sel, pairs = write_rows(SFT_POOL, tmp_path / "sel.jsonl"), write_rows(PAIRS, tmp_path / "pairs.jsonl")
    test = write_rows(TEST, tmp_path / "test.jsonl")
    out = tmp_path / "out"
    cell = out / "share-1-seed-0"
    cell.mkdir(parents=True)
    (cell / "cell.started.json").write_text(json.dumps({"key": "other", "identity": {"settings": {"budget": 3}}}))
    with pytest.raises(GrapeError, match=r"share-1-seed-0: begun with other settings or another draw \(.*budget"):
        grape.budgeting.run.budget(sel, pairs, test, out, budget=2, shares=[1.0], model="not-loaded")


def test_drop_models_deletes_a_finished_cells_weights_and_keeps_its_results(tiny_smol_dir, tmp_path):
    sel, pairs = write_rows(SFT_POOL, tmp_path / "sel.jsonl"), write_rows(PAIRS, tmp_path / "pairs.jsonl")
    test, out = write_rows(TEST, tmp_path / "test.jsonl"), tmp_path / "out"
    evaluation = {"verifier": "number", "max_new_tokens": 2, "device": "cpu"}
    settings = BudgetSettings(budget=1, shares=[1.0], model=str(tiny_smol_dir), keep_models=False,
                              sft=SFTSettings(**FAST), eval=EvalSettings(**evaluation))  # fmt: skip
    (row,) = grape.budgeting.run.budget(sel, pairs, test, out, settings)
    cell = out / row["cell"]
    assert (cell / "sft" / "grape-sft.json").is_file() and (cell / "sft" / "config.json").is_file()
    assert not list(cell.rglob("*.safetensors")) and not (cell / "sft" / "checkpoints").exists()
    assert grape.budgeting.run.budget(sel, pairs, test, out, settings, keep_models=True) == [row]  # same cell key


def test_a_budget_step_of_grape_run_writes_its_cells_and_results_in_its_folder_and_is_cached(tiny_smol_dir, tmp_path):
    from grape.pipeline.run import run_pipeline

    for rows, name in ((SFT_POOL, "sel.jsonl"), (PAIRS, "pairs.jsonl"), (TEST, "test.jsonl")):
        write_rows(rows, tmp_path / name)
    step = {"name": "grid", "type": "budget", "input": "sel.jsonl", "pairs": "pairs.jsonl", "data": "test.jsonl",
            "budget": 1, "shares": [1], "model": str(tiny_smol_dir), "sft": FAST,
            "eval": {"verifier": "number", "max_new_tokens": 2, "device": "cpu"}}  # fmt: skip
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump({"workdir": "run", "steps": [step]}, sort_keys=False))
    (outcome,) = run_pipeline(path)
    assert outcome.status == "ran" and outcome.output == tmp_path / "run" / "grid" / "results.jsonl"
    (row,) = read_table_rows(outcome.output)
    assert (row["n_sft"], row["n_pairs"], row["trained"]) == (1, 0, "sft")
    assert (tmp_path / "run" / "grid" / "share-1-seed-0" / "cell.json").is_file()
    assert run_pipeline(path)[0].status == "cached"


def test_a_run_of_other_shares_adds_its_rows_to_the_folders_table_and_loses_none(tiny_smol_dir, tmp_path, capsys):
    """`--shares 0` after `--shares 1` into the same folder: results.jsonl and summary.md hold both cells (by
    share), not only the last run's; a finished cell made with other settings is left out, and said so."""
    sel, pairs = write_rows(SFT_POOL, tmp_path / "sel.jsonl"), write_rows(PAIRS, tmp_path / "pairs.jsonl")
    test, out = write_rows(TEST, tmp_path / "test.jsonl"), tmp_path / "out"
    evaluation = {"verifier": "number", "max_new_tokens": 2, "device": "cpu"}
    settings = BudgetSettings(budget=1, model=str(tiny_smol_dir), sft=SFTSettings(**FAST), dpo=DPOSettings(**FAST),
                              eval=EvalSettings(**evaluation))  # fmt: skip
    (sft_only,) = grape.budgeting.run.budget(sel, pairs, test, out, settings, shares=[1.0])
    rows = grape.budgeting.run.budget(sel, pairs, test, out, settings, shares=[0.0])
    assert [(r["share"], r["trained"]) for r in rows] == [(0.0, "dpo"), (1.0, "sft")]
    assert rows[1] == sft_only and read_table_rows(out / "results.jsonl") == rows
    summary = (out / "summary.md").read_text()
    assert "| 0 | 0 | 1 | 1 |" in summary and "| 1 | 1 | 0 | 1 |" in summary
    done = out / "share-1-seed-0" / "cell.json"
    saved = json.loads(done.read_text())
    saved["identity"]["settings"]["budget"] = 7  # as if made by a run of another budget
    done.write_text(json.dumps(saved))
    capsys.readouterr()
    assert grape.budgeting.run.budget(sel, pairs, test, out, settings, shares=[0.0]) == rows[:1]
    assert read_table_rows(out / "results.jsonl") == rows[:1]
    assert "1 finished cell(s)" in capsys.readouterr().err  # the console writes to stderr


def test_a_setting_added_since_a_cell_was_made_matches_it_only_at_its_default():
    """A cell finished before grape had a setting (e.g. eval.batching) was made with that setting's default
    behaviour: the same cell at the default, another cell otherwise; a changed setting is always a change."""
    current = {"settings": json.loads(json.dumps(settings_dict(BudgetSettings()), default=str)), "share": 1.0}
    saved = copy.deepcopy(current)
    del saved["settings"]["eval"]["batching"]
    assert identity_changes(saved, current) == []
    static = copy.deepcopy(current)
    static["settings"]["eval"]["batching"] = "static"
    assert identity_changes(saved, static) == ["settings.eval.batching"]
    other = copy.deepcopy(current)
    other["settings"]["budget"] = 7
    assert identity_changes(other, current) == ["settings.budget"]
    assert identity_changes(current, saved) == ["settings.eval.batching"]  # a setting gone since is a change
