"""`grape run --dry-run`: which steps are cached, and how long each took when it last ran here (model-free steps:
a verify step and a select step on hand-written rows); a verify step's sandbox settings checked before any step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grape.cli import main
from grape.console import console
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.pipeline import load_pipeline, preview_pipeline, run_pipeline

POOL = [{"id": "q", "prompt": "1+1?", "answer": "2",
         "candidates": [{"text": "The answer is 2", "source": "a"}, {"text": "It is 3", "source": "b"}]}]  # fmt: skip
SCORES = [{"id": "q", "candidate": k, "source": s, "n_tokens": 4, "sum_logprob": 4 * m, "mean_logprob": m,
           "status": "scored", "row": 1, "prompt": "1+1?", "messages": None, "response": f"r{k}", "answer": None,
           "correct": None} for k, (s, m) in enumerate([("a", -1.0), ("b", -0.5)])]  # fmt: skip


def write_pipeline(folder: Path, verify_block: str = "") -> Path:
    write_rows(POOL, folder / "pool.jsonl")
    write_rows(SCORES, folder / "scores.jsonl")
    path = folder / "pipeline.yaml"
    path.write_text(f"""
workdir: run
steps:
  - {{name: check, type: verify, input: pool.jsonl, verifier: number{verify_block}}}
  - {{name: best, type: select, input: scores.jsonl, strategy: grape}}
""")
    return path


def test_the_dry_run_shows_the_cached_steps_and_their_last_time(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console, "width", 200)
    path = write_pipeline(tmp_path)
    new = preview_pipeline(path)
    assert [(p.status, p.last_seconds) for p in new] == [("runs", None), ("runs", None)]
    run_pipeline(path)
    took = {
        name: json.loads((tmp_path / "run" / name / "stage.json").read_text())["seconds"] for name in ("check", "best")
    }
    cached = preview_pipeline(path)
    assert [(p.step, p.status, p.last_seconds) for p in cached] == [("check", "cached", took["check"]),
                                                                    ("best", "cached", took["best"])]  # fmt: skip
    assert main(["run", "--dry-run", str(path)]) == 0
    assert "every step is cached: a run does nothing" in capsys.readouterr().err
    changed = preview_pipeline(path, overrides=["steps.best.strategy=lowest"])
    assert (changed[1].status, changed[1].reason, changed[1].last_seconds) == (
        "runs", "settings changed: strategy", took["best"])  # fmt: skip
    assert main(["run", "--dry-run", str(path), "steps.best.strategy=lowest"]) == 0
    shown = capsys.readouterr().err
    assert "last run" in shown and "1 of 2 steps would run or may run (depends); 1 of them took" in shown
    assert not list((tmp_path / "run" / "best").glob("*.partial"))  # the dry run wrote nothing


def test_overrides_may_follow_the_flags(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console, "width", 200)
    path = write_pipeline(tmp_path)
    run_pipeline(path)
    capsys.readouterr()
    assert main(["run", str(path), "--dry-run", "steps.best.strategy=lowest", "check.limit=1"]) == 0
    shown = capsys.readouterr().err
    assert "settings changed: strategy" in shown and "settings changed: limit" in shown
    with pytest.raises(SystemExit) as refused:  # a flag no command has is still refused
        main(["run", str(path), "--dry-run", "--no-such-flag"])
    assert refused.value.code == 2
    assert "unrecognized arguments: --no-such-flag" in capsys.readouterr().err


@pytest.mark.parametrize(("block", "message"), [
    (", sandbox_timeout: 0", "must be a number of seconds above 0, not 0.0"),
    (", sandbox_memory_mb: 8", "at least 32"),
    (", limit: 0", "steps.check: limit: 0: must be at least 1"),
])  # fmt: skip
def test_a_verify_steps_bad_sandbox_setting_stops_the_pipeline_before_any_step(tmp_path, block, message):
    path = write_pipeline(tmp_path, block)
    with pytest.raises(GrapeError, match=message):
        load_pipeline(path)
    assert not (tmp_path / "run").exists()


def test_the_dry_run_refuses_a_bad_limit_in_one_line_naming_the_file_the_step_and_the_field(tmp_path, capsys):
    """An eval step's `limit: -2` passed the dry run and failed only when the step ran, naming neither."""
    write_rows(POOL, tmp_path / "pool.jsonl")
    path = tmp_path / "pipeline.yaml"
    path.write_text("workdir: run\nsteps:\n  - {name: exam, type: eval, data: pool.jsonl, limit: -2}\n")
    assert main(["run", "--dry-run", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{path}: steps.exam: limit: -2: must be at least 1" in err
    assert not (tmp_path / "run").exists()
