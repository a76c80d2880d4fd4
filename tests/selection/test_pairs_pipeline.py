"""A `pairs` step of `grape run`: it reads the nearest score step's output, runs on a tiny model's scores
beside an S3FT `priority:` selection, is cached like any step, and a bad setting stops the pipeline first."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.pipeline import load_pipeline, run_pipeline

QUESTIONS = [("What is 2 + 3?", 5), ("What is 4 times 5?", 20), ("What is 9 minus 4?", 5)]


def _write(folder: Path, model_dir: Path, pairs: dict | None = None) -> Path:
    """Per question: the model's own wrong answer, a right paraphrase, the right reference; q2 has no wrong one."""
    rows = []
    for i, (question, answer) in enumerate(QUESTIONS):
        own = answer if i == 2 else answer + 1
        rows.append({"id": f"q{i}", "prompt": question, "answer": str(answer), "candidates": [
            {"text": f"The answer is {own}.", "source": "self"},
            {"text": f"Step by step, that makes {answer}.", "source": "paraphrase"},
            {"text": f"{question.removesuffix('?')} is {answer}.", "source": "reference"}]})  # fmt: skip
    write_rows(rows, folder / "candidates.jsonl")
    spec = {
        "workdir": "run",
        "defaults": {"model": str(model_dir), "template": "paper", "device": "cpu", "dtype": "float32"},
        "steps": [
            {"name": "verify", "type": "verify", "input": "candidates.jsonl", "verifier": "math"},
            {"name": "fit", "type": "score"},
            {"name": "s3ft", "type": "select", "strategy": "priority:self,paraphrase,reference",
             "require_correct": True},
            {"name": "prefs", "type": "pairs", **(pairs or {})},
        ],
    }  # fmt: skip
    path = folder / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_a_pairs_step_reads_the_nearest_scores_and_runs(tiny_model_dir, tmp_path):
    path = _write(tmp_path, tiny_model_dir)
    plan = {p.name: p for p in load_pipeline(path).steps}
    assert plan["prefs"].ref_of("input") == "fit"
    outcomes = run_pipeline(path)
    assert [(o.step, o.status) for o in outcomes] == [(s, "ran") for s in ("verify", "fit", "s3ft", "prefs")]
    run = tmp_path / "run"
    scores = read_table_rows(run / "fit" / "scores.parquet")
    made = read_table_rows(run / "prefs" / "pairs.jsonl")
    # verified scores: a correct chosen one (the better-fitting of paraphrase and reference) against the wrong one
    assert [p["id"] for p in made] == ["q0", "q1"]
    for p in made:
        mine = {r["candidate"]: r for r in scores if r["id"] == p["id"]}
        right = [k for k, r in mine.items() if r["correct"]]
        assert p["chosen_candidate"] == max(right, key=lambda k: (mine[k]["mean_logprob"], -k))
        assert (p["rejected_source"], p["rejected_correct"]) == ("self", False)
        assert p["margin"] == pytest.approx(mine[p["chosen_candidate"]]["mean_logprob"] - mine[0]["mean_logprob"])
        assert p["prompt"] == mine[0]["prompt"]
    meta = read_sidecar(run / "prefs" / "pairs.jsonl")
    assert meta["instructions_without_pair"] == [{"id": "q2", "row": 3, "reason": "no_rejected_eligible",
                                                 "candidates": 3, "scored": 3}]  # fmt: skip
    assert meta["score_settings"]["template"] == "paper"
    # the S3FT selection beside it: q2's own answer is right, so it is the target; elsewhere the paraphrase
    selected = read_table_rows(run / "s3ft" / "selected.jsonl")
    assert [(s["id"], s["source"]) for s in selected] == [("q0", "paraphrase"), ("q1", "paraphrase"), ("q2", "self")]
    # a changed pairs setting reruns only that step
    outcomes = run_pipeline(_write(tmp_path, tiny_model_dir, pairs={"rejected_from": "rest"}))
    assert {o.step: o.status for o in outcomes} == {"verify": "cached", "fit": "cached", "s3ft": "cached",
                                                    "prefs": "ran"}  # fmt: skip
    assert len(read_table_rows(run / "prefs" / "pairs.jsonl")) == 3


def test_a_bad_pairs_setting_stops_the_pipeline_before_it_runs(tiny_model_dir, tmp_path):
    path = _write(tmp_path, tiny_model_dir, pairs={"chosen": "lowest"})
    with pytest.raises(GrapeError, match=r"pipeline.yaml: steps.prefs: --chosen 'lowest': use one of grape, random"):
        run_pipeline(path)
    assert not (tmp_path / "run" / "verify").exists()
