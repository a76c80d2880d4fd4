"""`grape sft`: defaults < --config YAML < flags; the resolved settings land in OUTDIR; bad settings are one line."""

from __future__ import annotations

import pytest
import yaml

from grape.cli import build_parser, main
from grape.config import load_settings
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.training.cli import settings_from_args
from grape.training.settings import SFTSettings


def _settings(argv: list[str]) -> SFTSettings:
    return settings_from_args(build_parser().parse_args(["sft", "selected.jsonl", "-o", "out", *argv]))


def test_flags_win_over_the_config_file_which_wins_over_defaults(tmp_path):
    config = tmp_path / "sft.yaml"
    config.write_text("lr: 1e-3\nmax_steps: 7\nlora_r: 8\ntemplate: chat\neos: false\n")  # PyYAML: 1e-3 is a str
    settings = _settings(["--config", str(config), "--lr", "0.5", "--lora-r", "0"])
    assert (settings.lr, settings.lora_r) == (0.5, 0)  # flags
    assert (settings.max_steps, settings.template, settings.eos) == (7, "chat", False)  # file
    assert (settings.batch_size, settings.padding_free) == (8, True)  # defaults
    assert _settings(["--no-eos"]).eos is False and _settings([]).eos is True


def test_unknown_or_mistyped_settings_are_user_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("learning_rate: 0.1\n")
    with pytest.raises(GrapeError, match="unknown setting.*learning_rate.*known: .*lr"):
        load_settings(SFTSettings, bad)
    bad.write_text("max_steps: ten\n")
    with pytest.raises(GrapeError, match="max_steps: expected int, got 'ten'"):
        load_settings(SFTSettings, bad)


def test_grape_sft_command_trains_and_saves_the_resolved_settings(tiny_model_dir, tmp_path, capsys):
    write_rows([{"prompt": "What is 1 + 1?", "completion": "1 + 1 = 2."}] * 2, tmp_path / "selected.jsonl")
    config = tmp_path / "sft.yaml"
    config.write_text(f"model: {tiny_model_dir}\nlr: 1e-3\nmax_steps: 5\nprecision: fp32\n")
    out = tmp_path / "out"
    code = main(["sft", str(tmp_path / "selected.jsonl"), "-o", str(out), "--config", str(config), "--max-steps", "1"])
    assert code == 0
    resolved = yaml.safe_load((out / "grape-sft.yaml").read_text())
    assert (resolved["lr"], resolved["max_steps"], resolved["model"]) == (1e-3, 1, str(tiny_model_dir))
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    assert main(["sft", str(tmp_path / "missing.jsonl"), "-o", str(out)]) == 2
    assert "missing.jsonl: no such file" in capsys.readouterr().err
