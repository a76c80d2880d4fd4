"""`grape eval` prompts a model grape trained in its training template, and warns when told to use another."""

from __future__ import annotations

import json
import shutil

import yaml

from grape.cli import main
from grape.data.tables import write_rows
from grape.models.trained_template import template_for_model, template_mismatch_warning, trained_template


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


def test_the_evaluation_template_is_the_trained_one_unless_given(tmp_path, capsys):
    assert template_for_model(str(tmp_path), None) == "paper"  # not trained by grape
    (tmp_path / "grape-dpo.yaml").write_text(yaml.safe_dump({"template": "chat"}))
    assert template_for_model(str(tmp_path), None) == "chat"
    assert "prompting with --template chat" in capsys.readouterr().err
    assert template_for_model(str(tmp_path), "paper") == "paper"  # given: used, with the warning
    assert "trained with --template chat" in capsys.readouterr().err


def test_eval_prompts_in_the_trained_template_and_warns_once_when_told_otherwise(tiny_smol_dir, tmp_path, capsys):
    model = tmp_path / "sft"
    shutil.copytree(tiny_smol_dir, model)
    (model / "grape-sft.yaml").write_text(yaml.safe_dump({"template": "chat"}))
    data = write_rows([{"id": "a", "prompt": "2 + 3?", "answer": "5"}], tmp_path / "items.jsonl")
    output = tmp_path / "e.jsonl"
    argv = ["eval", "--model", str(model), "--data", str(data), "-o", str(output), "--max-new-tokens", "2"]
    assert main(argv) == 0
    captured = capsys.readouterr()
    assert "but is evaluated with" not in captured.err
    assert captured.err.count("prompting with --template chat") == 1
    assert json.loads(output.with_name(output.name + ".meta.json").read_text())["settings"]["template"] == "chat"
    assert main([*argv, "--template", "paper"]) == 0
    assert capsys.readouterr().err.count("was trained with --template chat") == 1
    assert json.loads(output.with_name(output.name + ".meta.json").read_text())["settings"]["template"] == "paper"
