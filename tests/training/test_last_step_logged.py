"""A run whose length is not a multiple of logging_steps still logs its last step: its "last loss" is the last
step's, not the first's (a budget cell of 8 DPO steps with logging_steps 10 reported step 1's loss as its last)."""

from __future__ import annotations

import pytest
from dpo_pairs import PAIRS
from sft_rows import FAST, ROWS, fresh

from grape.training.dpo import dpo
from grape.training.reward_model import reward_model
from grape.training.sft import sft

SPARSE = {**FAST, "logging_steps": 10}


@pytest.mark.parametrize("stage", ["sft", "dpo", "simpo", "reward-model"])
def test_the_last_of_three_steps_is_logged(stage, smol_base, tmp_path):
    if stage == "sft":
        metrics = sft(ROWS, None, loaded=fresh(smol_base), **SPARSE, max_steps=3).metrics
    elif stage in ("dpo", "simpo"):
        metrics = dpo(PAIRS, None, loaded=fresh(smol_base), **SPARSE, max_steps=3, loss=stage).metrics
    else:
        folder = tmp_path / "base"
        smol_base.model.save_pretrained(folder)
        smol_base.tokenizer.save_pretrained(folder)
        metrics = reward_model(PAIRS, None, model=str(folder), **SPARSE, max_steps=3, lora_r=2, device="cpu").metrics
    assert [step for step, *_ in metrics["loss_curve"]] == [1, 3]  # the first step (TRL logs it) and the last
    assert metrics["loss_last"] == metrics["loss_curve"][-1][1] != metrics["loss_first"]
