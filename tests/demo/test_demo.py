"""`grape demo` end to end with the real embedded target, as the README's first command runs it."""

import json
import subprocess
import sys

import pyarrow.parquet as pq

import grape
from grape.data.layout import load_instructions
from grape.demo.cli import demo_data_path


def test_demo_data_meets_its_promise():
    items = load_instructions(demo_data_path())  # fail-fast: the bundled data has no bad row
    assert len(items) >= 40
    assert all(len(i.candidates) >= 4 for i in items)
    sources = {c.source for i in items for c in i.candidates}
    assert len(sources) >= 3 and {"reference"} < sources
    assert sum(1 for i in items if i.answer is not None) >= 10  # checkable problems carry their answer


def test_grape_demo_runs_and_writes_everything(tmp_path):
    result = subprocess.run([sys.executable, "-m", "grape.cli", "demo", "-o", str(tmp_path / "out")],
                            capture_output=True, text=True)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    scores = pq.read_table(tmp_path / "out" / "scores.parquet").to_pylist()
    n_candidates = sum(len(i.candidates) for i in load_instructions(demo_data_path()))
    assert len(scores) == n_candidates and all(r["status"] == "scored" for r in scores)
    selected = [json.loads(line) for line in (tmp_path / "out" / "selected.jsonl").read_text().splitlines()]
    assert len(selected) == len({r["id"] for r in scores})
    best = {}
    for r in scores:
        if r["id"] not in best or r["mean_logprob"] > best[r["id"]]:
            best[r["id"]] = r["mean_logprob"]
    assert all(s["score"] == best[s["id"]] for s in selected)
    assert "Selection (grape)" in result.stderr and "chosen" in result.stderr
    report = tmp_path / "out" / "report.html"  # the report is written beside the outputs, and its path printed
    assert report.is_file() and "reference" in report.read_text()
    assert str(report) in " ".join(result.stderr.split())


def test_python_api_is_importable():
    assert callable(grape.score) and callable(grape.select)
