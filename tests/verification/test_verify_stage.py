"""`grape verify` end to end: `correct` on each candidate, through `grape score`, into `select --require-correct`."""

from __future__ import annotations

import json

import pyarrow.parquet as pq

from grape.cli import main
from grape.verification import get_verifier
from grape.verification.verify import verify

POOL = [
    {"id": "q1", "prompt": "What is 6 * 7?", "answer": "42", "candidates": [
        {"text": "6 * 7 = 42. The answer is 42.", "source": "a"},
        {"text": "The answer is 48.", "source": "b"}]},
    {"id": "q2", "prompt": "What is 10 / 4?", "answer": "2.5", "candidates": [
        {"text": "10 / 4 = 5/2, so the answer is 5/2.", "source": "a"},
        {"text": "It is 2.50", "source": "b"}]},
    {"id": "q3", "prompt": "What is 9 - 10?", "answer": "-1", "candidates": [
        {"text": "9 - 10 = 1", "source": "a"},
        {"text": "The answer is 19.", "source": "b"}]},
    {"id": "q4", "prompt": "Say hi.", "candidates": [{"text": "Hi!", "source": "a"}]},
]  # fmt: skip


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_verify_adds_correct_and_a_reason_to_every_candidate(tmp_path):
    rows, counts = verify(_write(tmp_path / "pool.jsonl", POOL), tmp_path / "verified.jsonl", verifier="math")
    assert [[c["correct"] for c in r["candidates"]] for r in rows] == [[True, False], [True, True], [False, False],
                                                                      [None]]  # fmt: skip
    assert rows[2]["candidates"][0]["verify_reason"] == "wrong answer: 9 - 10 = 1 (whole text) != gold -1"
    assert rows[3]["candidates"][0]["verify_reason"] == "no gold answer"
    assert (counts["a"].correct, counts["a"].incorrect, counts["a"].unknown) == (2, 1, 1)
    assert counts["b"].reasons == {"wrong answer": 2}
    written = [json.loads(line) for line in (tmp_path / "verified.jsonl").read_text().splitlines()]
    assert written == rows
    meta = json.loads((tmp_path / "verified.jsonl.meta.json").read_text())
    assert meta["settings"]["verifier"] == "math" and meta["counts"]["b"]["correct"] == 1


def test_correct_flows_through_score_into_select_require_correct(tmp_path, tiny_model_dir, capsys):
    pool, verified = _write(tmp_path / "pool.jsonl", POOL), tmp_path / "verified.jsonl"
    scores, selected = tmp_path / "scores.parquet", tmp_path / "selected.jsonl"
    assert main(["verify", str(pool), "-o", str(verified), "--verifier", "math"]) == 0
    assert main(["score", str(verified), "-o", str(scores), "--model", str(tiny_model_dir), "--dtype", "float32"]) == 0
    table = pq.read_table(scores).to_pylist()
    assert [(r["id"], r["source"], r["correct"]) for r in table] == [
        ("q1", "a", True), ("q1", "b", False), ("q2", "a", True), ("q2", "b", True),
        ("q3", "a", False), ("q3", "b", False), ("q4", "a", None)]  # fmt: skip
    capsys.readouterr()
    assert main(["select", str(scores), "-o", str(selected), "--require-correct"]) == 0
    said = capsys.readouterr().err
    chosen = [json.loads(line) for line in selected.read_text().splitlines()]
    assert [c["id"] for c in chosen] == ["q1", "q2"]
    assert chosen[0]["source"] == "a" and all(c["correct"] is True for c in chosen)
    # q3 (no correct candidate) and q4 (nothing verifiable) are reported, not silently dropped.
    assert "2 instructions had no eligible candidate" in " ".join(said.split())
    meta = json.loads((tmp_path / "selected.jsonl.meta.json").read_text())
    assert meta["instructions_without_candidate"] == ["q3", "q4"]
    assert meta["summary"]["instructions_without_candidate"] == 2


def test_code_verifier_on_a_grouped_file_with_tests(tmp_path):
    pool = [{"id": "add", "prompt": "Write add(a, b).", "tests": ["assert add(2, 3) == 5"], "candidates": [
        {"text": "```python\ndef add(a, b):\n    return a + b\n```", "source": "good"},
        {"text": "def add(a, b):\n    return a - b", "source": "bad"},
        {"text": "def add(a, b):\n    while True:\n        pass", "source": "slow"}]}]  # fmt: skip
    rows, _ = verify(_write(tmp_path / "code.jsonl", pool), None, verifier=get_verifier("code", timeout_s=2), workers=2)
    verdicts = {c["source"]: (c["correct"], c["verify_reason"].split(":")[0]) for c in rows[0]["candidates"]}
    assert verdicts == {"good": (True, "tests passed"), "bad": (False, "failed (exit 1)"), "slow": (False, "timeout")}
    assert rows[0]["tests"] == ["assert add(2, 3) == 5"]  # the item's own columns are carried through
