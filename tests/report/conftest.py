"""A small scores table with hand-picked fits, so every number in the report can be checked by hand.

Four instructions, three sources; q3's gamma candidate was skipped, and one input row was unreadable.
GRAPE chooses q1 gamma, q2 alpha, q3 beta, q4 alpha; best-vs-second margins: q4 0.01, q1 0.05,
q2 0.7, q3 1.0. With verdicts: q2 and q3 have no correct candidate.
"""

from __future__ import annotations

import shutil

import pytest

from grape.data.tables import write_rows
from grape.scoring.score import SCORES_SCHEMA

# (id, source, mean_logprob or None when skipped, n_tokens, correct)
CANDIDATES = [
    ("q1", "alpha", -1.00, 10, True), ("q1", "beta", -0.50, 20, False), ("q1", "gamma", -0.45, 30, True),
    ("q2", "alpha", -0.20, 5, False), ("q2", "beta", -0.90, 15, False), ("q2", "gamma", -1.50, 40, False),
    ("q3", "alpha", -2.00, 8, False), ("q3", "beta", -1.00, 12, False), ("q3", "gamma", None, None, None),
    ("q4", "alpha", -0.30, 7, True), ("q4", "beta", -0.31, 9, True), ("q4", "gamma", -0.80, 25, False),
]  # fmt: skip


def scores_rows(verified: bool) -> list[dict]:
    rows, candidate = [], {}
    for ident, source, fit, n, correct in CANDIDATES:
        k = candidate[ident] = candidate.get(ident, -1) + 1
        rows.append({
            "id": ident, "candidate": k, "source": source, "n_tokens": n,
            "sum_logprob": None if fit is None else fit * n, "mean_logprob": fit,
            "status": "scored" if fit is not None else "skipped:too_long", "row": len(rows) + 1,
            "prompt": f"Instruction {ident}: say something", "messages": None,
            "response": f"<b>{source} answers {ident}</b>", "answer": None,
            "correct": correct if verified else None,
        })  # fmt: skip
    rows.append({"id": None, "candidate": None, "source": None, "status": "skipped:malformed_row", "row": 99})
    return rows


@pytest.fixture
def scores(tmp_path):
    """The table without verdicts."""
    return write_rows(scores_rows(verified=False), tmp_path / "scores.parquet", SCORES_SCHEMA)


@pytest.fixture
def verified_scores(tmp_path):
    """The same table after a verifier ran (a `correct` verdict per scored candidate)."""
    return write_rows(scores_rows(verified=True), tmp_path / "verified.parquet", SCORES_SCHEMA)


@pytest.fixture
def chromium():
    """Debian's chromium and chromedriver, or a skip saying how to get them."""
    browser, driver = shutil.which("chromium") or shutil.which("chromium-browser"), shutil.which("chromedriver")
    if not (browser and driver):
        pytest.skip("headless Chromium is absent (bash scripts/install.sh --test installs Debian's chromium "
                    "and chromium-driver where apt-get works)")  # fmt: skip
    return browser, driver


# Two arms of one small pipeline on the tiny model: verify -> score -> select (grape, or lowest) -> sft -> eval.
QUESTIONS = [("What is 2 + 3?", 5), ("What is 4 times 5?", 20), ("What is 9 minus 4?", 5), ("What is 6 + 7?", 13)]


@pytest.fixture(scope="session")
def pipeline_runs(tiny_model_dir, tmp_path_factory):
    """The workdirs of two real `grape run`s that differ only in the selection strategy: [grape, lowest]."""
    import yaml

    from grape.pipeline import run_pipeline

    folder = tmp_path_factory.mktemp("arms")
    pool = [{"id": f"q{i}", "prompt": q, "answer": str(a),
             "candidates": [{"text": f"The answer is {a}.", "source": "terse"},
                            {"text": f"Step by step, that makes {a} in all.", "source": "wordy"},
                            {"text": f"The answer is {a + 1}.", "source": "wrong"}]}
            for i, (q, a) in enumerate(QUESTIONS)]  # fmt: skip
    write_rows(pool, folder / "candidates.jsonl")
    write_rows([{"id": r["id"], "prompt": r["prompt"], "answer": r["answer"]} for r in pool], folder / "heldout.jsonl")
    runs = []
    for strategy in ("grape", "lowest"):
        spec = {
            "workdir": f"runs/{strategy}",
            "defaults": {"model": str(tiny_model_dir), "template": "paper", "device": "cpu", "dtype": "float32"},
            "steps": [
                {"name": "verify", "type": "verify", "input": "candidates.jsonl", "verifier": "math"},
                {"name": "score", "type": "score"},
                {"name": "select", "type": "select", "strategy": strategy, "require_correct": True},
                {"name": "sft", "type": "sft", "max_steps": 3, "batch_size": 2, "lr": 1e-3, "precision": "fp32",
                 "logging_steps": 1, "save_steps": 1, "seed": 0},
                {"name": "eval", "type": "eval", "data": "heldout.jsonl", "max_new_tokens": 3},
            ],
        }  # fmt: skip
        path = folder / f"{strategy}.yaml"
        path.write_text(yaml.safe_dump(spec, sort_keys=False))
        run_pipeline(path)
        runs.append(folder / "runs" / strategy)
    return runs
