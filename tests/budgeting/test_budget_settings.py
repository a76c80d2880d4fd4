"""The settings of `grape budget`: flags < --set < --config order, the checks, and the pipeline's budget step."""

from __future__ import annotations

import pytest
import yaml

from grape.budgeting.cli import settings_from_args
from grape.budgeting.settings import BudgetSettings, check_budget
from grape.cli import build_parser, main
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.evaluation.settings import EvalSettings
from grape.pipeline import load_pipeline
from grape.training.settings import DPOSettings, SFTSettings


def _args(*extra: str):
    return build_parser().parse_args(["budget", "sel.jsonl", "pairs.jsonl", "--data", "t.jsonl", "-o", "out", *extra])


def test_flags_win_over_set_which_wins_over_the_config_file(tmp_path):
    config = tmp_path / "budget.yaml"
    config.write_text(yaml.safe_dump({"budget": 64, "seeds": [5], "sft": {"max_steps": 7, "lr": 1e-4},
                                      "dpo": {"beta": 0.2}, "eval": {"verifier": "number"}}))  # fmt: skip
    settings = settings_from_args(_args("--config", str(config), "--budget", "128", "--shares", "0,0.05,1",
                                        "--set", "sft.max_steps=9", "--set", "dpo.trainer.max_grad_norm=0.5",
                                        "--set", "eval.max_new_tokens=16", "--pair-cost", "2"))  # fmt: skip
    assert (settings.budget, settings.shares, settings.pair_cost, settings.seeds) == (128, [0.0, 0.05, 1.0], 2.0, [5])
    assert (settings.sft.max_steps, settings.sft.lr) == (9, 1e-4)
    assert (settings.dpo.beta, settings.dpo.trainer) == (0.2, {"max_grad_norm": 0.5})
    assert (settings.eval.verifier, settings.eval.max_new_tokens) == ("number", 16)
    assert settings_from_args(_args()).shares == [0.0, 0.05, 0.1, 0.25, 1.0]


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--set", "sft.max_stepz=3"], "unknown setting.s. max_stepz"),
        (["--set", "rl.steps=3"], "expected sft.KEY=VALUE, dpo.KEY=VALUE or eval.KEY=VALUE"),
    ],
)
def test_a_bad_setting_is_a_one_line_error(flags, message):
    with pytest.raises(GrapeError, match=message):
        settings_from_args(_args(*flags))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        (BudgetSettings(), "budget must be at least 1"),
        (BudgetSettings(budget=8, shares=[0, 1.5]), r"shares: 1.5 is not in \[0, 1\]"),
        (BudgetSettings(budget=8, shares=[0.1, 0.1]), "lists a share twice"),
        (BudgetSettings(budget=8, seeds=[]), "seeds is empty"),
        (BudgetSettings(budget=8, pair_cost=0), "pair_cost must be positive"),
        (BudgetSettings(budget=8, sft=SFTSettings(model="x")), "sft.model: budget sets it for every cell"),
        (BudgetSettings(budget=8, dpo=DPOSettings(loss="kto")), "unknown loss 'kto'"),
        (BudgetSettings(budget=8, eval=EvalSettings(limit=0)), "eval.limit must be at least 1"),
    ],
)
def test_settings_no_cell_can_run_with_are_refused(settings, message):
    with pytest.raises(GrapeError, match=message):
        check_budget(settings)


def test_the_command_refuses_a_pool_too_small_before_training(tmp_path, capsys):
    sel = write_rows([{"id": f"q{i}", "prompt": "p", "completion": "c"} for i in range(3)], tmp_path / "sel.jsonl")
    pairs = write_rows([{"id": "q9", "prompt": "p", "chosen": "a", "rejected": "b"}], tmp_path / "pairs.jsonl")
    code = main(["budget", str(sel), str(pairs), "--data", str(sel), "-o", str(tmp_path / "out"), "--budget", "4",
                 "--shares", "0.5", "--model", "no-such-model"])  # fmt: skip
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert f"{pairs}: 1 instructions left beside the 2 drawn for SFT (of 1), but share 0.5 of budget 4 needs 2" in err
    assert not (tmp_path / "out").exists()


def test_a_budget_step_reads_the_nearest_select_and_pairs_outputs(tmp_path):
    spec = {"workdir": "run", "steps": [
        {"name": "fit", "type": "score", "input": "candidates.jsonl"},
        {"name": "best", "type": "select"},
        {"name": "prefs", "type": "pairs"},
        {"name": "grid", "type": "budget", "data": "test.jsonl", "budget": 16, "shares": [0, 0.5],
         "sft": {"max_steps": 2}, "dpo": {"beta": 0.3}},
    ]}  # fmt: skip
    write_rows([{"id": "a", "prompt": "p", "answer": "1"}], tmp_path / "candidates.jsonl")
    write_rows([{"id": "a", "prompt": "p", "answer": "1"}], tmp_path / "test.jsonl")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    grid = {p.name: p for p in load_pipeline(path).steps}["grid"]
    assert (grid.ref_of("input"), grid.ref_of("pairs")) == ("best", "prefs")
    assert grid.inputs["data"] == tmp_path / "test.jsonl" and grid.output.name == "results.jsonl"
    assert (grid.settings.budget, grid.settings.sft.max_steps, grid.settings.dpo.beta) == (16, 2, 0.3)
    spec["steps"][-1]["sft"] = {"model": "x"}
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    with pytest.raises(GrapeError, match="steps.grid.*sft.model: budget sets it for every cell"):
        load_pipeline(path)


def test_a_bad_row_in_a_pool_stops_the_run_before_any_cell_trains(tmp_path, capsys):
    sel = write_rows([{"id": f"q{i}", "prompt": "p", "completion": "c"} for i in range(3)], tmp_path / "sel.jsonl")
    pairs = write_rows([{"id": "q7", "prompt": "p", "chosen": "a", "rejected": "b"},
                        {"id": "q8", "prompt": "p", "chosen": "a"}], tmp_path / "pairs.jsonl")  # fmt: skip
    code = main(["budget", str(sel), str(pairs), "--data", str(sel), "-o", str(tmp_path / "out"), "--budget", "2",
                 "--shares", "1", "--model", "no-such-model"])  # fmt: skip
    assert code == 2  # share 1 draws no pair, but the row is still read before anything runs
    assert f"{pairs}, row 2, field 'rejected'" in " ".join(capsys.readouterr().err.split())
    assert not (tmp_path / "out").exists()
