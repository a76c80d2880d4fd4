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


def _commands(parser, prefix=()):
    """(words, parser) of every subcommand, nested ones (grape tools prepare) too."""
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sub in action.choices.items():
                yield (*prefix, name), sub
                yield from _commands(sub, (*prefix, name))


def test_every_help_ends_with_examples_of_that_command():
    for words, sub in _commands(build_parser()):
        tail = sub.format_help().rstrip().split("examples:\n")
        assert len(tail) == 2, f"grape {' '.join(words)} --help has no examples at its end"
        lines = tail[1].replace("\\\n", " ").splitlines()  # a long example goes on over lines ending in \\
        assert len(lines) >= 2, f"grape {' '.join(words)}: fewer than two examples"
        assert all(line.strip().startswith("grape ") for line in lines), lines
        assert any(line.strip().startswith(f"grape {words[0]}")
                   or line.strip().startswith("grape run") for line in lines), lines  # fmt: skip


def test_top_level_help_lists_the_commands_in_data_path_order():
    listed = list(build_parser()._subparsers._group_actions[0].choices)
    path = ["generate", "verify", "score", "select", "pairs", "sft", "dpo", "rl", "eval"]
    assert [name for name in listed if name in path] == path
    assert listed[:2] == ["demo", "run"]


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


@pytest.mark.parametrize(
    "command",
    [["generate", "in.jsonl", "--model", "m"], ["score", "in.jsonl"], ["verify", "in.jsonl"], ["select", "in.jsonl"],
     ["pairs", "in.jsonl"],
     ["decode", "in.jsonl"], ["itool", "curriculum", "in.jsonl"], ["itool", "deficiency", "in.jsonl"],
     ["itool", "mcts", "in.jsonl"], ["tools", "prepare", "in.jsonl"]],
    ids=lambda command: " ".join(command[:2]),
)  # fmt: skip
def test_a_table_output_with_a_suffix_grape_does_not_write_is_refused_before_any_work(tmp_path, capsys, command):
    """`-o x.csv` used to get Parquet bytes under the .csv name (and `-o x` too)."""
    from grape.cli import main

    out = tmp_path / "out.csv"
    out.write_text("kept\n")
    with pytest.raises(SystemExit) as refused:
        main([*command, "-o", str(out)])
    assert refused.value.code == 2
    assert "argument -o/--output: cannot write a table as a .csv file: name it .jsonl, .json or .parquet" in (
        capsys.readouterr().err
    )
    assert out.read_text() == "kept\n"


def test_eval_refuses_a_table_output_it_cannot_write_before_the_model_loads(tmp_path, capsys):
    from grape.cli import main

    data, out = tmp_path / "items.jsonl", tmp_path / "answers"
    data.write_text(json.dumps({"id": "a", "prompt": "1+1?", "answer": "2"}) + "\n")
    assert main(["eval", "--data", str(data), "-o", str(out), "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{out}: cannot write a table as a file without a suffix: name it .jsonl, .json or .parquet")
    assert len(err.splitlines()) == 1 and not out.exists()


def test_write_rows_refuses_a_suffix_it_would_not_write_as_named(tmp_path):
    from grape.data.tables import read_table_rows, write_rows
    from grape.errors import GrapeError

    with pytest.raises(GrapeError, match=r"x\.csv: cannot write a table as a \.csv file"):
        write_rows([{"a": 1}], tmp_path / "x.csv")
    assert not list(tmp_path.iterdir())
    for name in ("x.jsonl", "x.JSON", "x.parquet"):
        assert read_table_rows(write_rows([{"a": 1}], tmp_path / name)) == [{"a": 1}]
