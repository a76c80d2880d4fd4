"""Issue 19 #4: weights changed in place (same size, same dates) are another model; a re-run to the same
output scores again instead of resuming with the old model's scores."""

import json
import os

import pytest
from safetensors_files import scale_tensor_in_place, tensor_the_old_samples_missed, write_llama_over_64_mb

from grape.data.tables import read_sidecar
from grape.models.fingerprint import fingerprint_method
from grape.scoring.score import ScoreSettings, score

ROWS = [
    {"id": "q1", "prompt": "Name a fruit.", "candidates": [{"text": "A grape."}, {"text": "Bread, mostly."}]},
    {"id": "q2", "prompt": "What is 2 + 2?", "candidates": [{"text": "4"}, {"text": "It is four."}]},
]


@pytest.fixture
def model_over_64_mb(tmp_path, monkeypatch):
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    monkeypatch.setenv("GRAPE_CACHE_DIR", str(tmp_path / "cache"))  # fingerprints from a cache of its own
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    write_llama_over_64_mb(tmp_path / "model", tokenizer)
    return tmp_path / "model"


def test_weights_changed_in_place_are_scored_again(model_over_64_mb, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(row) + "\n" for row in ROWS))
    settings = ScoreSettings(model=str(model_over_64_mb), dtype="float32", device="cpu", on_error="skip")
    output = tmp_path / "scores.parquet"
    old = score(source, output, settings)
    weights = model_over_64_mb / "model.safetensors"
    stat = weights.stat()
    scale_tensor_in_place(weights, tensor_the_old_samples_missed(weights), 3.0)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    rerun = score(source, output, settings)
    fresh = score(source, tmp_path / "fresh.parquet", settings)
    assert read_sidecar(output)["parts"]["reused"] == 0  # nothing resumed from the old model's parts
    assert [r["mean_logprob"] for r in rerun] == [r["mean_logprob"] for r in fresh]
    shift = max(abs(a["mean_logprob"] - b["mean_logprob"]) for a, b in zip(old, rerun, strict=True))
    assert shift > 1e-3, "the change must move the scores, or this test shows nothing"
    model = read_sidecar(output)["model"]
    assert model["fingerprint"].startswith("files:")
    assert "sha256 of every file" in fingerprint_method(model["fingerprint"])
