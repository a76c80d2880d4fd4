"""A `--model` value that is neither a folder, a GGUF file, an embedded name nor a Hub id is refused at once,
naming the value: a mistyped path used to pass for a Hub id and fail at load time in the Hub client's words."""

from __future__ import annotations

import pytest
from huggingface_hub.utils import HFValidationError, validate_repo_id

from grape.errors import GrapeError
from grape.models.hub_ids import could_be_hub_id
from grape.models.load import resolve_model_dir

SPECS = ["gpt2", "google/gemma-3-270m", "HuggingFaceTB/SmolLM2-135M-Instruct", "a", "_x/y_", "1/2", "my_models/llama",
         "./no/such/model", "../model", "/abs/model", "~/models/x", "a/b/c", "org/-x", "org/x-", ".x", "x.", "a--b",
         "a..b/c", "org/model.git", "a b", "a/", "/a", "", "x" * 96, "x" * 97, "é/ü", "a/b.c-d_e"]  # fmt: skip


def _hub_accepts(spec: str) -> bool:
    try:
        validate_repo_id(spec)
    except HFValidationError:
        return False
    return True


@pytest.mark.parametrize("spec", SPECS)
def test_the_hub_id_form_agrees_with_the_hub_clients_own_check(spec):
    assert could_be_hub_id(spec) == _hub_accepts(spec)


def test_a_missing_path_is_refused_and_a_hub_id_is_passed_on(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GrapeError, match=r"^\./models/tuned: no such model directory \(nor a Hub id"):
        resolve_model_dir("./models/tuned")
    with pytest.raises(GrapeError, match=r"runs/sft/model: no such model directory"):
        resolve_model_dir(str(tmp_path / "runs" / "sft" / "model"))
    monkeypatch.setattr("grape.models.load.hub_reachable", lambda: True)  # tests/models/test_hub_reach.py: offline
    assert resolve_model_dir("google/gemma-3-270m") == ("google/gemma-3-270m", {"spec": "google/gemma-3-270m",
                                                                                "kind": "hub"})  # fmt: skip
