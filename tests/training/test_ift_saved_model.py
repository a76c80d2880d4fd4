"""The model IFT saves reads its inputs through the table it was trained on (E, the frozen copy): with a tied head
trained in full, the head keeps its trained weights and the input table is E again, untied; the reloaded model
then computes what the training pass computed on gold tokens. SFT, and IFT under LoRA, are left tied."""

from __future__ import annotations

import json

import torch
from sft_rows import FAST, ROWS, fresh

from grape.models.load import load_model
from grape.text import Renderer
from grape.training.sft import sft


def _gold_ids(tokenizer) -> torch.Tensor:
    renderer = Renderer(tokenizer, "paper")
    encoded = renderer.encode(ROWS[0]["prompt"], [ROWS[0]["completion"]])[0]
    return torch.tensor([encoded.prompt + encoded.response])


def test_a_tied_head_trained_in_full_is_untied_and_the_inputs_read_through_e(base, tmp_path):
    initial = base.model.get_input_embeddings()
    assert base.model.get_output_embeddings().weight is initial.weight  # tiny Gemma 3: tied, as the real one
    result = sft(ROWS, tmp_path / "ift", loaded=fresh(base), **FAST, loss="ift", max_steps=3)
    assert result.metrics["ift_untied_input_embeddings"] is True
    reloaded = load_model(str(tmp_path / "ift"), "float32", "cpu").model
    assert json.loads((tmp_path / "ift" / "config.json").read_text())["tie_word_embeddings"] is False
    assert torch.equal(reloaded.get_input_embeddings().weight, initial.weight)  # E, the table trained on
    head = reloaded.get_output_embeddings().weight
    assert torch.equal(head, result.model.get_output_embeddings().weight) and not torch.equal(head, initial.weight)
    # the reference: the trained network fed E(gold ids), as IFT's training pass feeds it (λ = 0 on gold tokens)
    ids = _gold_ids(base.tokenizer)
    with torch.no_grad():
        expected = result.model(inputs_embeds=initial(ids)).logits
        assert torch.allclose(reloaded(input_ids=ids).logits, expected, atol=1e-5)


def test_sft_and_ift_under_lora_keep_the_tied_table(base, tmp_path):
    plain = sft(ROWS, tmp_path / "sft", loaded=fresh(base), **FAST, max_steps=2)
    lora = sft(ROWS, tmp_path / "lora", loaded=fresh(base), **FAST, loss="ift", max_steps=2, lora_r=2)
    assert plain.metrics["ift_untied_input_embeddings"] is False
    assert lora.metrics["ift_untied_input_embeddings"] is False
    for folder in ("sft", "lora"):
        model = load_model(str(tmp_path / folder), "float32", "cpu").model
        assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
