"""The first step's DPO and SimPO losses equal a hand computation: per-response log-probs from grape's own
`token_logprobs` (one unpadded forward pass per sequence, the renderer's split), then `losses.py`. The reference
pass (grape's scoring engine) gives the hand-computed reference sums, and its output is kept in OUTDIR."""

from __future__ import annotations

import json
import math

import pytest
import torch
import yaml
from dpo_pairs import FAST, PAIRS, response_logprob_sum, texts
from sft_rows import fresh

from grape.data.tables import read_sidecar, read_table_rows
from grape.models.load import load_model
from grape.text import Renderer
from grape.training.dpo import dpo
from grape.training.losses import dpo_sigmoid_loss, simpo_loss


@pytest.fixture(scope="module")
def reference(tiny_model_dir, tmp_path_factory):
    """Another tiny Gemma 3 (other random weights, the same tokenizer): a reference unlike the policy, so that
    the DPO margins are far from 0."""
    from tiny_models import tiny_gemma3

    base = load_model(str(tiny_model_dir), "float32", "cpu")
    path = tmp_path_factory.mktemp("tiny-gemma3-ref")
    tiny_gemma3(vocab_size=base.model.config.vocab_size, sliding_window=16, seed=1).save_pretrained(path)
    base.tokenizer.save_pretrained(path)
    return load_model(str(path), "float32", "cpu")


def _sums(model, renderer: Renderer) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(chosen sums, rejected sums, chosen token counts, rejected token counts), one entry per pair."""
    out: list[list[float]] = [[], [], [], []]
    for row in PAIRS:
        prompt, *responses = texts(row)
        for k, ids in enumerate(renderer.encode(prompt, responses)):
            out[k].append(response_logprob_sum(model, ids.prompt, ids.response))
            out[2 + k].append(len(ids.response))
    return tuple(torch.tensor(x, dtype=torch.float64) for x in out)  # type: ignore[return-value]


def test_the_first_dpo_step_loss_and_the_reference_pass_equal_a_hand_computation(base, reference, tmp_path):
    out = tmp_path / "model"
    result = dpo(PAIRS, out, loaded=fresh(base), ref=str(reference.identity["spec"]), **FAST, max_steps=1)
    renderer = Renderer(base.tokenizer, "paper")
    policy_c, policy_r, _, _ = _sums(base.model, renderer)  # the policy before its first update
    ref_c, ref_r, _, _ = _sums(reference.model, renderer)
    scored = read_table_rows(out / "reference.parquet")
    assert [r["sum_logprob"] for r in scored] == pytest.approx(torch.stack([ref_c, ref_r], 1).flatten().tolist(),
                                                               abs=1e-4)  # fmt: skip
    assert read_sidecar(out / "reference.parquet")["settings"]["template"] == "paper"
    hand = dpo_sigmoid_loss(policy_c, policy_r, ref_c, ref_r, beta=0.1).mean()
    assert abs(float(hand) - math.log(2)) > 0.01  # log 2 is the loss against itself: this reference differs
    assert result.metrics["loss_first"] == pytest.approx(float(hand), abs=1e-5)
    assert result.settings.beta == 0.1  # dpo's default, resolved into grape-dpo.yaml
    saved = yaml.safe_load((out / "grape-dpo.yaml").read_text())
    assert (saved["loss"], saved["beta"], saved["ref"]) == ("dpo", 0.1, reference.identity["spec"])
    done = json.loads((out / "grape-dpo.json").read_text())
    assert done["metrics"]["pairs"] == len(PAIRS) and done["metrics"]["steps"] == 1
    card = (out / "README.md").read_text()
    assert f"Reference: `{reference.identity['spec']}`" in card and "DPO (TRL's DPOTrainer" in card


def test_the_first_simpo_step_loss_equals_a_hand_computation(base):
    result = dpo(PAIRS, None, loaded=fresh(base), loss="simpo", beta=2.0, gamma=0.7, **FAST, max_steps=1)
    chosen, rejected, n_chosen, n_rejected = _sums(base.model, Renderer(base.tokenizer, "paper"))
    hand = simpo_loss(chosen / n_chosen, rejected / n_rejected, beta=2.0, gamma=0.7).mean()
    assert result.metrics["loss_first"] == pytest.approx(float(hand), abs=1e-5)
    assert 0.1 < float(hand) < 5  # neither saturated nor zero: the comparison says something
    assert result.metrics["reference_seconds"] is None  # SimPO has no reference pass
