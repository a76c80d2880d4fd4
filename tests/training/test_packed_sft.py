"""`grape sft` on a CPU attends per example in a packed batch (grape.models.segment_attention): the step's loss
equals the padded batch's, and the per-example path is the one that ran."""

from __future__ import annotations

import pytest
from sft_rows import FAST, ROWS

import grape.models.segment_attention as segment_attention
from grape.training.sft import sft


@pytest.fixture(params=["gemma", "llama"])
def model_dir(request, tiny_model_dir, tiny_smol_dir):
    return str(tiny_model_dir if request.param == "gemma" else tiny_smol_dir)


def first_loss(model_dir: str, padding_free: bool) -> float:
    result = sft(ROWS, None, model=model_dir, template="paper", max_steps=1, padding_free=padding_free, **FAST)
    return result.metrics["loss_first"]


def test_a_packed_step_equals_a_padded_one_and_attends_per_example(model_dir, monkeypatch):
    rows_cut = []
    original = segment_attention.segment_bounds
    monkeypatch.setattr(segment_attention, "segment_bounds", lambda p: rows_cut.append(p) or original(p))
    packed = first_loss(model_dir, True)
    assert rows_cut, "the packed step did not attend per example"
    assert all(len(original(p)) == len(ROWS) for p in rows_cut)  # one batch of all four rows, cut into four
    rows_cut.clear()
    padded = first_loss(model_dir, False)
    assert not rows_cut  # a padded batch goes through transformers' own SDPA
    assert packed == pytest.approx(padded, abs=1e-5)
