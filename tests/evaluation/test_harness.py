"""`grape eval --harness lm-eval`: the arguments and the printed command, and, offline, a real lm-eval run on a
task of our own (a local JSONL file) whose printed command, run by lm-eval's own CLI, gives the same numbers.

Hub tasks such as gsm8k need their datasets from the Hub: only their names are checked here (lm-eval's task
index is local), never run."""

import json
import shlex
import subprocess
import sys

import pytest

from grape.cli import main
from grape.errors import GrapeError
from grape.evaluation.harness import (
    check_task_names,
    lm_eval_argv,
    lm_eval_command,
    metric_rows,
    model_args,
    run_lm_eval,
)
from grape.evaluation.settings import HarnessSettings

CPU = {"device": "cpu", "dtype": "auto"}  # auto on a CPU: float32, written out


def test_the_command_for_an_sft_output_directory(tmp_path):
    model = tmp_path / "runs" / "sft"
    model.mkdir(parents=True)
    (model / "config.json").write_text("{}")  # a merged model (sft's default); its adapter beside it is ignored
    (model / "adapter").mkdir()
    (model / "adapter" / "adapter_config.json").write_text('{"base_model_name_or_path": "/base"}')
    settings = HarnessSettings(model=str(model), tasks=["gsm8k"], **CPU)
    assert lm_eval_command(settings) == (
        f"lm_eval --model hf --model_args pretrained={model},dtype=float32 --tasks gsm8k --batch_size auto --device cpu"
    )
    settings = HarnessSettings(model=str(model), tasks=["gsm8k", "arc_easy"], num_fewshot=8, limit=50,
                               template="chat", batch_size="4", dtype="bf16", device="cpu",
                               include_path="my tasks", trust_remote_code=True)  # fmt: skip
    assert shlex.split(lm_eval_command(settings)) == [
        "lm_eval", "--model", "hf", "--model_args", f"pretrained={model},dtype=bfloat16,trust_remote_code=True",
        "--tasks", "gsm8k,arc_easy", "--batch_size", "4", "--device", "cpu", "--num_fewshot", "8", "--limit", "50",
        "--apply_chat_template", "--include_path", "my tasks", "--trust_remote_code",
    ]  # fmt: skip


def test_an_adapter_only_output_is_its_base_plus_the_adapter(tmp_path):
    model = tmp_path / "sft"
    (model / "adapter").mkdir(parents=True)  # `grape sft --save adapter`: no merged model
    (model / "adapter" / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/models/base"}))
    settings = HarnessSettings(model=str(model), tasks=["gsm8k"], **CPU)
    assert model_args(settings) == {"pretrained": "/models/base", "peft": str(model / "adapter"), "dtype": "float32"}
    (model / "adapter" / "adapter_config.json").write_text("{}")
    with pytest.raises(GrapeError, match="names no base_model_name_or_path"):
        model_args(settings)


def test_mistakes_are_one_line_errors(tmp_path, capsys):
    model = tmp_path / "a,b"
    model.mkdir()
    (model / "config.json").write_text("{}")
    with pytest.raises(GrapeError, match="lm-eval splits it at the comma"):
        lm_eval_command(HarnessSettings(model=str(model), tasks=["gsm8k"], **CPU))
    with pytest.raises(GrapeError, match="give the lm-eval tasks to run: --tasks gsm8k"):
        lm_eval_argv(HarnessSettings(), {"pretrained": "x"}, "cpu")
    cases = [
        (["--harness", "lm-eval", "--model", str(model)], "give the lm-eval tasks"),
        (["--harness", "lm-eval", "--tasks", "gsm8k", "--data", "x.jsonl", "--verifier", "math"],
         "--data, --verifier: grape's own evaluation only"),
        (["--model", str(model)], "give the items to evaluate: --data FILE"),
    ]  # fmt: skip
    for argv, message in cases:
        assert main(["eval", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1


def test_without_lm_eval_the_command_is_printed_with_the_install_line(tmp_path):
    """In a fresh process with lm_eval hidden, as in an install without the harness extra."""
    model = tmp_path / "sft"
    model.mkdir()
    (model / "config.json").write_text("{}")
    code = "import sys; sys.modules['lm_eval'] = None; from grape.cli import main; sys.exit(main(sys.argv[1:]))"
    argv = ["eval", "--harness", "lm-eval", "--tasks", "gsm8k", "--model", str(model), "--device", "cpu"]
    run = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    settings = HarnessSettings(model=str(model), tasks=["gsm8k"], **CPU)
    assert run.stdout == lm_eval_command(settings) + "\n"  # stdout holds the command alone, to copy or pipe
    assert "lm-eval is not installed: pip install 'grape-fit[harness]'" in run.stderr
    api = (f"import sys; sys.modules['lm_eval'] = None; from grape.evaluation.harness import run_lm_eval; "
           f"run_lm_eval(tasks=['gsm8k'], model={str(model)!r})")  # fmt: skip
    run = subprocess.run([sys.executable, "-c", api], capture_output=True, text=True, timeout=300)
    assert "GrapeError: lm-eval is not installed: pip install 'grape-fit[harness]'" in run.stderr


def test_metric_rows_pair_each_value_with_its_stderr():
    results = {
        "results": {"gsm8k": {"alias": "gsm8k", "sample_len": 8,
                              "exact_match,strict-match": 0.25, "exact_match_stderr,strict-match": 0.1,
                              "exact_match,flexible-extract": 0.5, "exact_match_stderr,flexible-extract": "N/A"}},
        "n-samples": {"gsm8k": {"original": 1319, "effective": 8}},
    }  # fmt: skip
    assert metric_rows(results) == [
        {"task": "gsm8k", "metric": "exact_match", "filter": "strict-match", "value": 0.25, "stderr": 0.1,
         "samples": 8},
        {"task": "gsm8k", "metric": "exact_match", "filter": "flexible-extract", "value": 0.5, "stderr": None,
         "samples": 8},
    ]  # fmt: skip


def test_task_names_are_checked_against_lm_evals_index():
    pytest.importorskip("lm_eval", reason="lm-eval comes with the harness extra: pip install -e .[harness]")
    from lm_eval.tasks import TaskManager

    index = TaskManager()  # lm-eval's own task index: local YAML files, nothing fetched
    check_task_names(["gsm8k", "arc_*"], index)  # the README's example, and a glob
    with pytest.raises(GrapeError, match="unknown lm-eval task 'gsm8kk': did you mean gsm8k"):
        check_task_names(["gsm8k", "gsm8kk"], index)


def test_a_hub_task_out_of_reach_is_a_one_line_error(tiny_model_dir, tmp_path, monkeypatch):
    """gsm8k's data set is on the Hub: offline (and with an empty cache), lm-eval cannot load it."""
    pytest.importorskip("lm_eval", reason="lm-eval comes with the harness extra: pip install -e .[harness]")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))
    with pytest.raises(GrapeError, match="lm-eval could not fetch what a task needs: Couldn't reach 'openai/gsm8k'"):
        run_lm_eval(model=str(tiny_model_dir), tasks=["gsm8k"], limit=1, **CPU)


# A multiple-choice task on a local file: lm-eval scores each choice's log-likelihood, no Hub, no generation.
TASK = """task: grape_tiny_choice
dataset_path: json
dataset_kwargs:
  data_files:
    test: {items}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{choices}}}}"
doc_to_target: "{{{{label}}}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
"""


def test_a_real_lm_eval_run_and_its_printed_command_agree(tiny_model_dir, tmp_path, monkeypatch, capsys):
    pytest.importorskip("lm_eval", reason="lm-eval comes with the harness extra: pip install -e .[harness]")
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")
    items = tmp_path / "items.jsonl"
    questions = [(f"What is {a} + {b}?", [str(a + b), str(a + b + 3)], i % 2) for i, (a, b) in
                 enumerate([(1, 2), (3, 4), (5, 6), (7, 1), (2, 2), (9, 3), (4, 8), (6, 6)])]  # fmt: skip
    rows = [{"question": q, "choices": c if label == 0 else c[::-1], "label": label} for q, c, label in questions]
    items.write_text("".join(json.dumps(row) + "\n" for row in rows))
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    (tasks / "grape_tiny_choice.yaml").write_text(TASK.format(items=items))
    output = tmp_path / "results.json"
    argv = ["eval", "--harness", "lm-eval", "--tasks", "grape_tiny_choice", "--include-path", str(tasks),
            "--model", str(tiny_model_dir), "--device", "cpu", "--batch-size", "4", "-o", str(output)]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    ours = json.loads(output.read_text())
    accuracy = ours["results"]["grape_tiny_choice"]["acc,none"]
    assert ours["n-samples"]["grape_tiny_choice"]["effective"] == 8 and 0 <= accuracy <= 1
    assert ours["config"]["model_args"] == {"pretrained": str(tiny_model_dir), "dtype": "float32"}
    sidecar = json.loads(output.with_name(output.name + ".meta.json").read_text())
    assert sidecar["metrics"][0]["value"] == accuracy and sidecar["settings"]["tasks"] == ["grape_tiny_choice"]

    command = sidecar["command"]  # also printed before the run
    assert command in " ".join(err.split())
    settings = HarnessSettings(model=str(tiny_model_dir), tasks=["grape_tiny_choice"], batch_size="4",
                               include_path=str(tasks), **CPU)  # fmt: skip
    assert command == lm_eval_command(settings)
    shell = shlex.split(command)
    assert shell[0] == "lm_eval"
    cli = [sys.executable, "-m", "lm_eval", *shell[1:], "--output_path", str(tmp_path / "cli")]
    finished = subprocess.run(cli, capture_output=True, text=True, timeout=600)
    assert finished.returncode == 0, finished.stderr[-2000:]
    (written,) = (tmp_path / "cli").rglob("results_*.json")
    theirs = json.loads(written.read_text())
    assert theirs["results"]["grape_tiny_choice"]["acc,none"] == accuracy
    assert theirs["n-samples"]["grape_tiny_choice"]["effective"] == 8
