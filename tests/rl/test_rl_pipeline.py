"""`grape run` with an `rl` step: the warm-up model comes from the sft step before it, the step writes the
trained model with its card, a re-run is cached, an eval after it evaluates the rl model, and settings the
rl stage refuses stop the pipeline before its first step."""

import json
import sys

import pytest
import yaml

from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.pipeline import load_pipeline, run_pipeline

VERIFIER = "def even_length(text, item):\n    return len(text) % int(item['answer']) == 0\n"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    (tmp_path / "rl_pipeline_len.py").write_text(VERIFIER)
    monkeypatch.syspath_prepend(str(tmp_path))
    write_rows([{"prompt": "What is 2 + 2?", "completion": "2 + 2 = 4."},
                {"prompt": "Name a prime.", "completion": "7 is a prime."}], tmp_path / "selected.jsonl")  # fmt: skip
    questions = [{"prompt": q, "answer": "2"} for q in ("What is 1 + 1?", "Say hi.", "Spell cat.", "Count to 3.")]
    (tmp_path / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    yield tmp_path
    sys.modules.pop("rl_pipeline_len", None)


def _pipeline(folder, model_dir, **rl_settings):
    rl = {"name": "reft", "type": "rl", "input": "questions.jsonl", "verifier": "python:rl_pipeline_len:even_length",
          "max_steps": 1, "batch_size": 2, "max_new_tokens": 4, "lr": 1.0e-3, "lora_r": 2, **rl_settings}  # fmt: skip
    spec = {"workdir": "run", "defaults": {"template": "paper", "device": "cpu"},
            "steps": [{"name": "warmup", "type": "sft", "input": "selected.jsonl", "model": str(model_dir),
                       "max_steps": 1, "batch_size": 2, "lr": 1.0e-3, "precision": "fp32"}, rl]}  # fmt: skip
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_pipeline_with_an_rl_step_trains_the_warm_up_model_of_the_sft_step_before_it(tiny_llama_dir, folder):
    path = _pipeline(folder, tiny_llama_dir)
    outcomes = run_pipeline(path)
    assert [(o.step, o.type, o.status) for o in outcomes] == [("warmup", "sft", "ran"), ("reft", "rl", "ran")]
    model = folder / "run" / "reft" / "model"
    settings = yaml.safe_load((model / "grape-rl.yaml").read_text())
    assert settings["model"] == str(folder / "run" / "warmup" / "model")  # linked, not the YAML's default
    assert (model / "config.json").is_file() and "reinforced with a verifier's reward (PPO)" in (
        model / "README.md"
    ).read_text()
    assert json.loads((model / "grape-rl.json").read_text())["metrics"]["steps"] == 1
    assert [o.status for o in run_pipeline(path)] == ["cached", "cached"]


def test_an_eval_after_an_rl_step_evaluates_the_rl_model(tiny_llama_dir, folder):
    path = _pipeline(folder, tiny_llama_dir)
    spec = yaml.safe_load(path.read_text())
    spec["steps"].append({"name": "check", "type": "eval", "data": "questions.jsonl"})
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    plan = load_pipeline(path).steps[-1]
    assert plan.settings.model == str(folder / "run" / "reft" / "model")


def test_rl_settings_the_stage_refuses_stop_the_pipeline_before_it_starts(tiny_llama_dir, folder):
    with pytest.raises(GrapeError, match=r"steps.reft.*num_generations must be at least 2"):
        run_pipeline(_pipeline(folder, tiny_llama_dir, algo="grpo", num_generations=1))
    assert not (folder / "run" / "warmup").exists()
