"""`grape run` on the older `stages:` form (one block per stage type, read as steps named after their types):
verify → score → select → sft → eval on a tiny model, cached by settings and inputs, resumed when killed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.pipeline import load_pipeline, run_pipeline

RESOLVED = "pipeline.resolved.yaml"
QUESTIONS = [("What is 2 + 3?", 5), ("What is 4 times 5?", 20), ("What is 9 minus 4?", 5), ("What is 6 + 7?", 13)]


def _candidates() -> list[dict]:
    """Two right solutions in different words and one wrong one per question."""
    rows = []
    for i, (question, answer) in enumerate(QUESTIONS):
        texts = [(f"The answer is {answer}.", "terse"), (f"Working it out step by step, we get {answer}.", "wordy"),
                 (f"The answer is {answer + 1}.", "wrong")]  # fmt: skip
        rows.append({"id": f"q{i}", "prompt": question, "answer": str(answer),
                     "candidates": [{"text": t, "source": s} for t, s in texts]})  # fmt: skip
    return rows


def _pipeline(folder: Path, model_dir: Path, select: dict | None = None, sft: dict | None = None,
              without: tuple[str, ...] = ()) -> Path:  # fmt: skip
    write_rows(_candidates(), folder / "candidates.jsonl")
    write_rows([{"id": r["id"], "prompt": r["prompt"], "answer": r["answer"]} for r in _candidates()[:2]],
               folder / "heldout.jsonl")  # fmt: skip
    spec = {
        "workdir": "run",
        "defaults": {"model": str(model_dir), "template": "paper", "device": "cpu", "dtype": "float32"},
        "stages": {
            "verify": {"input": "candidates.jsonl", "verifier": "math"},
            "score": {},
            "select": {"strategy": "grape", "require_correct": True, **(select or {})},
            "sft": {"max_steps": 2, "batch_size": 4, "lr": 1e-3, "precision": "fp32", "save_steps": 1, **(sft or {})},
            "eval": {"data": "heldout.jsonl", "max_new_tokens": 3},
        },
    }
    spec["stages"] = {name: block for name, block in spec["stages"].items() if name not in without}
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def _statuses(outcomes) -> dict[str, str]:
    return {o.step: o.status for o in outcomes}


@pytest.fixture(scope="module")
def first_run(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pipeline")
    outcomes = run_pipeline(_pipeline(folder, tiny_model_dir))
    return folder, outcomes


def _copy(first_run, tmp_path: Path) -> Path:
    return shutil.copytree(first_run[0], tmp_path / "copy")


def test_first_run_runs_every_stage_and_saves_the_resolved_pipeline(first_run):
    folder, outcomes = first_run
    assert _statuses(outcomes) == dict.fromkeys(["verify", "score", "select", "sft", "eval"], "ran")
    selected = read_table_rows(folder / "run" / "select" / "selected.jsonl")
    assert len(selected) == 4 and all(row["source"] in ("terse", "wordy") for row in selected)  # correct ones only
    assert (folder / "run" / "sft" / "model" / "config.json").is_file()
    assert len(read_table_rows(folder / "run" / "eval" / "eval.jsonl")) == 2
    resolved = {s["name"]: s for s in yaml.safe_load((folder / "run" / RESOLVED).read_text())["steps"]}
    assert list(resolved) == ["verify", "score", "select", "sft", "eval"]
    assert resolved["sft"]["settings"]["max_steps"] == 2
    assert resolved["sft"]["settings"]["template"] == "paper"  # from defaults
    assert resolved["eval"]["inputs"]["model"].startswith("output of sft")
    assert resolved["eval"]["settings"]["model"] == str(folder / "run" / "sft" / "model")  # not the default model


def test_a_second_run_does_nothing(first_run, tmp_path):
    folder = _copy(first_run, tmp_path)
    # (pipeline.resolved.yaml names absolute paths, which the copy moved: it is rewritten once here.)
    files = [p for p in (folder / "run").rglob("*") if p.is_file() and p.name not in ("run-log.jsonl", RESOLVED)]
    before = {p: p.stat().st_mtime_ns for p in files}
    assert set(_statuses(run_pipeline(folder / "pipeline.yaml")).values()) == {"cached"}
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before
    log = [json.loads(line) for line in (folder / "run" / "run-log.jsonl").read_text().splitlines()]
    assert [e["status"] for e in log] == ["ran"] * 5 + ["cached"] * 5


def test_a_changed_setting_reruns_its_stage_and_the_stages_fed_by_it(first_run, tiny_model_dir, tmp_path):
    folder = _copy(first_run, tmp_path)
    old = read_table_rows(folder / "run" / "select" / "selected.jsonl")
    outcomes = run_pipeline(folder / "pipeline.yaml", overrides=["select.strategy=lowest"])  # as on the command line
    assert _statuses(outcomes) == {"verify": "cached", "score": "cached", "select": "ran", "sft": "ran", "eval": "ran"}
    new = read_table_rows(folder / "run" / "select" / "selected.jsonl")
    assert [r["source"] for r in new] != [r["source"] for r in old]  # the selection really changed
    # A setting that leaves the output as it was (the seed of a strategy that draws nothing) stops there.
    outcomes = run_pipeline(_pipeline(folder, tiny_model_dir, select={"strategy": "lowest", "seed": 7}))
    assert _statuses(outcomes) == {"verify": "cached", "score": "cached", "select": "ran", "sft": "cached",
                                   "eval": "cached"}  # fmt: skip


def test_a_score_rerun_under_other_settings_reuses_the_scores_they_leave_unchanged(first_run, tmp_path):
    """A score step rerun (here: another part size) keeps its parts, keyed by all that changes a score: the
    instructions are not scored again, and the table, the same, leaves the steps after it cached."""
    folder = _copy(first_run, tmp_path)
    scores = folder / "run" / "score" / "scores.parquet"
    old = read_table_rows(scores)
    outcomes = run_pipeline(folder / "pipeline.yaml", overrides=["score.part_size=1"])
    assert _statuses(outcomes) == {"verify": "cached", "score": "ran", "select": "cached", "sft": "cached",
                                   "eval": "cached"}  # fmt: skip
    assert read_sidecar(scores)["parts"]["reused"] == len(QUESTIONS)
    assert read_table_rows(scores) == old


def test_a_killed_run_resumes(tiny_model_dir, tmp_path):
    """Kill `grape run` (a real process) during sft; the next run reuses the finished stages and resumes sft."""
    path = _pipeline(tmp_path, tiny_model_dir, sft={"max_steps": 6}, without=("eval",))
    checkpoints = tmp_path / "run" / "sft" / "model" / "checkpoints"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "grape.cli", "run", str(path)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.time() + 300
        while not list(checkpoints.glob("checkpoint-*/trainer_state.json")):
            assert process.poll() is None, "grape run ended before sft wrote a checkpoint"
            assert time.time() < deadline, "no checkpoint within 300 s"
            time.sleep(0.2)
        process.send_signal(signal.SIGKILL)
    finally:
        process.wait()
    assert not (tmp_path / "run" / "sft" / "stage.json").exists()  # sft did not finish
    outcomes = run_pipeline(path)
    assert _statuses(outcomes) == {"verify": "cached", "score": "cached", "select": "cached", "sft": "resumed"}
    metrics = json.loads((tmp_path / "run" / "sft" / "model" / "grape-sft.json").read_text())["metrics"]
    assert metrics["resumed_from"] is not None and metrics["steps"] == 6


def test_pipeline_mistakes_are_user_errors(tiny_model_dir, tmp_path):
    path = _pipeline(tmp_path, tiny_model_dir)
    spec = yaml.safe_load(path.read_text())
    cases = [
        ({"stages": {"train": {}}}, "unknown stage.*train"),
        ({"stages": {"score": {}}}, "stages.score: no `input:` given, or put a verify or generate step before it"),
        ({"stages": {**spec["stages"], "sft": {"template": "raw"}}}, "stages.sft: `template` is 'raw' but score"),
        ({"stages": {}, "steps": []}, "give `steps:` .* or the older `stages:` mapping, not both"),
        ({"stages": {**spec["stages"], "select": {"stratgy": "grape"}}}, "stages.select: unknown setting.*stratgy"),
    ]
    for change, message in cases:
        path.write_text(yaml.safe_dump({**spec, **change}))
        with pytest.raises(GrapeError, match=message):
            load_pipeline(path)
