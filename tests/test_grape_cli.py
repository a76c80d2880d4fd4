"""The command line as a user meets it: help texts, one-line errors, exit codes."""

import json
import subprocess
import sys

import pytest

from grape.cli import build_parser


def grape(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "grape.cli", *args], capture_output=True, text=True, cwd=cwd)


def test_every_subcommand_has_help_for_every_option():
    parser = build_parser()
    subcommands = parser._subparsers._group_actions[0].choices
    assert {"score", "select", "demo"} <= set(subcommands)
    for name, sub in subcommands.items():
        for action in sub._actions:
            if action.dest != "help":
                assert action.help, f"grape {name}: option {action.dest} has no help"


def test_top_level_help_lists_every_command():
    result = grape("--help")
    assert result.returncode == 0, result.stderr
    subcommands = build_parser()._subparsers._group_actions[0].choices
    for name in subcommands:
        assert name in result.stdout
    for name in subcommands:
        assert grape(name, "--help").returncode == 0


def test_help_exits_cleanly():
    result = grape("score", "--help")
    assert result.returncode == 0
    for option in ("--template", "--no-eos", "--dtype", "--device", "--on-error", "--columns"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["score", "missing.jsonl", "-o", "x.parquet"], "missing.jsonl: no such file or directory"),
        (["select", "missing.parquet", "-o", "x.jsonl"], "missing.parquet: no such file"),
        (["select", "BAD", "-o", "x.jsonl", "--strategy", "best"], "unknown strategy 'best'"),
    ],
)
def test_user_mistakes_are_one_line_without_traceback(tmp_path, args, message):
    (tmp_path / "BAD").write_text("")
    result = grape(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_bad_row_error_names_file_row_and_field(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(json.dumps({"id": "a", "prompt": "p", "candidates": [{"text": "ok"}, {"text": ""}]}) + "\n")
    result = grape("score", str(path), "-o", str(tmp_path / "s.parquet"), "--model", "gemma-3-270m")
    assert result.returncode == 2
    assert f"{path}, row 1, field 'candidates[1].text': empty response" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
