"""`grape eval` warns when a model grape trained with one template is evaluated with another."""

from __future__ import annotations

import shutil

import yaml

from grape.cli import main
from grape.data.tables import write_rows
from grape.evaluation.trained_template import template_mismatch_warning, trained_template


def test_the_template_comes_from_the_training_settings_beside_the_model(tmp_path):
    (tmp_path / "grape-sft.yaml").write_text(yaml.safe_dump({"model": "base", "template": "chat", "lr": 1e-5}))
    assert trained_template(tmp_path) == ("chat", str(tmp_path / "grape-sft.yaml"))
    warning = template_mismatch_warning(str(tmp_path), "paper")
    assert "trained with --template chat" in warning and "evaluated with --template paper" in warning
    assert template_mismatch_warning(str(tmp_path), "chat") is None


def test_no_warning_without_grape_training_settings(tmp_path):
    assert trained_template("smollm2-135m-instruct") is None  # an alias, not a folder
    assert trained_template(tmp_path) is None
    (tmp_path / "grape-rl.yaml").write_text(yaml.safe_dump({"template": None}))
    assert template_mismatch_warning(str(tmp_path), "paper") is None


def test_eval_prints_the_warning_once_in_one_line(tiny_smol_dir, tmp_path, capsys):
    model = tmp_path / "sft"
    shutil.copytree(tiny_smol_dir, model)
    (model / "grape-sft.yaml").write_text(yaml.safe_dump({"template": "chat"}))
    data = write_rows([{"id": "a", "prompt": "2 + 3?", "answer": "5"}], tmp_path / "items.jsonl")
    argv = [
        "eval",
        "--model",
        str(model),
        "--data",
        str(data),
        "-o",
        str(tmp_path / "e.jsonl"),
        "--max-new-tokens",
        "2",
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert err.count("was trained with --template chat") == 1
    assert main([*argv, "--template", "chat"]) == 0
    assert "was trained with" not in capsys.readouterr().err
