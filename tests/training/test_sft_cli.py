"""`grape sft`: defaults < --config YAML < flags; the resolved settings land in OUTDIR; bad settings are one line."""

from __future__ import annotations

import pytest
import torch
import yaml

from grape.cli import build_parser, main
from grape.config import load_settings
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.training.cli import settings_from_args
from grape.training.settings import PEFT_DEFAULT_R, SFTSettings


def _settings(argv: list[str]) -> SFTSettings:
    return settings_from_args(build_parser().parse_args(["sft", "selected.jsonl", "-o", "out", *argv]))


def test_flags_win_over_the_config_file_which_wins_over_defaults(tmp_path):
    config = tmp_path / "sft.yaml"
    config.write_text("lr: 1e-3\nmax_steps: 7\nlora_r: 8\ntemplate: chat\neos: false\n")  # PyYAML: 1e-3 is a str
    settings = _settings(["--config", str(config), "--lr", "0.5", "--lora-r", "0"])
    assert (settings.lr, settings.lora_r) == (0.5, 0)  # flags
    assert (settings.max_steps, settings.template, settings.eos) == (7, "chat", False)  # file
    assert (settings.batch_size, settings.padding_free) == (8, True)  # defaults
    assert _settings(["--no-eos"]).eos is False and _settings([]).eos is None  # None: as the selection was scored


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


def test_trl_flag_names_are_aliases_of_grapes():
    trl = _settings(["--model_name_or_path", "m", "--learning_rate", "3e-4", "--per_device_train_batch_size", "2",
                     "--gradient_accumulation_steps", "4", "--num_train_epochs", "2", "--lora_r", "8"])  # fmt: skip
    grape = _settings(["--model", "m", "--lr", "3e-4", "--batch-size", "2", "--grad-accum", "4", "--epochs", "2",
                       "--lora-r", "8"])  # fmt: skip
    assert trl == grape
    assert (trl.model, trl.lr, trl.batch_size, trl.grad_accum, trl.epochs, trl.lora_r) == ("m", 3e-4, 2, 4, 2.0, 8)
    args = build_parser().parse_args(["sft", "selected.jsonl", "--output_dir", "runs/x"])
    assert args.output_dir == "runs/x"


def test_use_peft_takes_trls_default_rank_unless_a_rank_is_set(tmp_path):
    assert _settings(["--use_peft"]).lora_r == PEFT_DEFAULT_R == 16
    assert _settings(["--use_peft", "--lora_r", "4"]).lora_r == 4
    config = tmp_path / "sft.yaml"
    config.write_text("lora_r: 8\n")
    assert _settings(["--use_peft", "--config", str(config)]).lora_r == 8  # the file's rank is a rank set
    assert _settings([]).lora_r == 0  # no PEFT unless asked
    with pytest.raises(GrapeError, match="--use_peft with --lora_r 0"):
        _settings(["--use_peft", "--lora_r", "0"])


def test_trainer_args_from_flags_update_the_config_files_mapping(tmp_path):
    config = tmp_path / "sft.yaml"
    config.write_text("trainer:\n  max_grad_norm: 0.5\n  optim: adamw_torch\n")
    settings = _settings(["--config", str(config), "--trainer-arg", "max_grad_norm=0.25",
                          "--trainer-arg", "neftune_noise_alpha=5", "--trainer-arg", "run_name=a=b"])  # fmt: skip
    assert settings.trainer == {"max_grad_norm": 0.25, "optim": "adamw_torch", "neftune_noise_alpha": 5,
                                "run_name": "a=b"}  # fmt: skip
    assert _settings(["--trainer-arg", "logging_first_step=false"]).trainer == {"logging_first_step": False}
    with pytest.raises(GrapeError, match="--trainer-arg 'max_grad_norm': expected key=value"):
        _settings(["--trainer-arg", "max_grad_norm"])


def test_save_and_resume_flags():
    assert _settings([]).save == "merged" and _settings(["--save-adapter"]).save == "both"
    assert _settings(["--save", "adapter"]).save == "adapter"
    assert [_settings(flag).resume for flag in ([], ["--resume"], ["--no-resume"])] == [None, True, False]
    with pytest.raises(SystemExit):  # one or the other
        _settings(["--resume", "--no-resume"])


def test_trl_style_command_trains_a_lora_adapter_with_a_passed_through_field(tiny_model_dir, tmp_path):
    write_rows([{"prompt": "What is 1 + 1?", "completion": "1 + 1 = 2."}] * 2, tmp_path / "selected.jsonl")
    out = tmp_path / "out"
    code = main(["sft", str(tmp_path / "selected.jsonl"), "--output_dir", str(out), "--model_name_or_path",
                 str(tiny_model_dir), "--learning_rate", "1e-3", "--max_steps", "2", "--save_steps", "1",
                 "--use_peft", "--save-adapter", "--precision", "fp32",
                 "--trainer-arg", "max_grad_norm=0.25"])  # fmt: skip
    assert code == 0
    resolved = yaml.safe_load((out / "grape-sft.yaml").read_text())
    assert (resolved["lora_r"], resolved["lora_alpha"], resolved["save"]) == (16, 32, "both")
    assert resolved["trainer"] == {"max_grad_norm": 0.25}
    args = torch.load(out / "checkpoints" / "checkpoint-2" / "training_args.bin", weights_only=False)
    assert (args.max_grad_norm, args.learning_rate, args.disable_tqdm) == (0.25, 1e-3, False)  # what the trainer ran
    assert (out / "adapter" / "adapter_model.safetensors").is_file() and (out / "model.safetensors").is_file()
    assert "| trainer.max_grad_norm | 0.25 |" in (out / "README.md").read_text()
