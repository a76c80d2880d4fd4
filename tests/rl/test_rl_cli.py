"""`grape rl DATA --model M -o DIR --verifier V`: flags over --config over defaults, a run, one-line errors."""

import json

import pytest
import yaml

from grape.cli import build_parser, main
from grape.rl.cli import rl_settings
from grape.verification.registry import NAMES


def test_flags_win_over_the_config_file(tmp_path):
    config = tmp_path / "rl.yaml"
    config.write_text(yaml.safe_dump({"verifier": "number", "kl_coef": 0.01, "lora_r": 8, "max_new_tokens": 64}))
    args = build_parser().parse_args(["rl", "q.jsonl", "-o", "out", "--config", str(config), "--kl-coef", "0.05",
                                      "--aggregation", "token", "--no-resume"])  # fmt: skip
    settings = rl_settings(args)
    assert (settings.verifier, settings.kl_coef, settings.lora_r, settings.max_new_tokens) == ("number", 0.05, 8, 64)
    assert (settings.aggregation, settings.resume, settings.gamma, settings.lam) == ("token", False, 1.0, 0.95)
    args = build_parser().parse_args(["rl", "q.jsonl", "-o", "out", "--algo", "grpo", "--num-generations", "4"])
    assert (rl_settings(args).algo, rl_settings(args).num_generations) == ("grpo", 4)


def test_resume_flags_and_their_default():
    def resume(*flags):
        return rl_settings(build_parser().parse_args(["rl", "q.jsonl", "-o", "out", *flags])).resume

    assert (resume(), resume("--resume"), resume("--no-resume")) == (None, True, False)


def test_the_help_lists_every_verifier_of_the_registry(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["rl", "--help"])
    listed = " ".join(capsys.readouterr().out.split())  # the help's own line breaks undone
    assert all(name in listed for name in NAMES)
    assert "number-stated" in listed and "tool-call" in listed


def test_a_run_from_the_command_line(tiny_llama_dir, tmp_path, capsys):
    data = tmp_path / "q.jsonl"
    data.write_text("".join(json.dumps({"question": q, "gold": "4"}) + "\n" for q in ("2 + 2?", "1 + 3?")))
    out = tmp_path / "out"
    code = main(["rl", str(data), "--model", str(tiny_llama_dir), "-o", str(out), "--verifier", "number",
                 "--prompt-column", "question", "--answer-column", "gold", "--max-steps", "1", "--batch-size", "2",
                 "--max-new-tokens", "4", "--device", "cpu", "--lora-r", "2"])  # fmt: skip
    assert code == 0
    history = [json.loads(line) for line in (out / "rl-history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["reward"] in (0.0, 0.05, 0.1, 0.5, 0.55, 1.0)
    assert yaml.safe_load((out / "grape-rl.yaml").read_text())["answer_column"] == "gold"
    assert (out / "config.json").is_file() and (out / "tokenizer.json").is_file()
    table = capsys.readouterr().err
    assert "1e-05" in table.split("\nPPO\n")[1]  # LoRA's learning rate, not rounded away to 0.0000


def test_bad_settings_are_one_line_errors(tmp_path, capsys):
    config = tmp_path / "bad.yaml"
    config.write_text("kl_coeff: 0.1\n")
    assert main(["rl", "q.jsonl", "-o", str(tmp_path / "o"), "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown setting(s) kl_coeff" in err and len(err.splitlines()) == 1
    assert main(["rl", "q.jsonl", "-o", str(tmp_path / "o"), "--batch-size", "4", "--mini-batch-size", "3"]) == 2
    assert "mini_batch_size 3 must divide batch_size 4" in capsys.readouterr().err
