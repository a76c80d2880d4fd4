"""What `grape sft` leaves in OUTDIR: the PEFT adapter beside or instead of the merged model, the model in the
training dtype, a model card that says how the data was selected; defaults from the selection's sidecar; the
progress bar on stderr."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from safetensors.torch import load_file
from sft_rows import FAST, ROWS, fresh

from grape.data.tables import write_rows, write_sidecar
from grape.errors import GrapeError
from grape.models.load import load_model
from grape.training.sft import sft

SUMMARY = {"strategy": "grape", "instructions": 4, "candidates": 12, "candidates_scored": 11, "selected": 4,
           "sources": {"m1": {"candidates": 6, "chosen": 3, "chosen_share": 0.75, "mean_logprob": -1.0},
                       "m2": {"candidates": 5, "chosen": 1, "chosen_share": 0.25, "mean_logprob": -2.0}}}  # fmt: skip


@pytest.fixture(scope="module")
def selection(tiny_model_dir, tmp_path_factory):
    """ROWS as `grape select` writes them: with a sidecar saying how they were scored and chosen."""
    path = write_rows(ROWS, tmp_path_factory.mktemp("selection") / "selected.jsonl")
    write_sidecar(path, {"stage": "select", "scores": "runs/scores.parquet", "summary": SUMMARY,
                         "settings": {"strategy": "grape", "top_k": 1, "require_correct": True},
                         "score_settings": {"model": str(tiny_model_dir), "template": "raw", "eos": False}},
                  )  # fmt: skip
    return path


@pytest.fixture(scope="module")
def lora_both(base, selection, tmp_path_factory):
    out = tmp_path_factory.mktemp("sft") / "lora"
    result = sft(selection, out, loaded=fresh(base), **FAST, max_steps=2, lora_r=4, save="both", command="grape sft x")
    return result, out


def _logits(model, ids):
    with torch.no_grad():
        return model(input_ids=torch.tensor([ids])).logits


def test_the_adapter_is_written_beside_the_merged_model_and_equals_it(lora_both, tiny_model_dir):
    from peft import PeftModel

    _, out = lora_both
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    config = json.loads((out / "adapter" / "adapter_config.json").read_text())
    assert (config["r"], config["lora_alpha"], config["peft_type"]) == (4, 8, "LORA")
    assert (out / "adapter" / "tokenizer.json").is_file() and (out / "model.safetensors").is_file()
    adapter = load_file(out / "adapter" / "adapter_model.safetensors")
    assert adapter and all("lora_A" in k or "lora_B" in k for k in adapter)
    assert all(v.dtype == torch.float32 for v in adapter.values())  # PEFT keeps adapters in fp32
    ids = [2, 100, 200, 300, 400, 500]
    untrained = _logits(load_model(str(tiny_model_dir), "float32", "cpu").model, ids)
    with_adapter = PeftModel.from_pretrained(load_model(str(tiny_model_dir), "float32", "cpu").model, out / "adapter")
    merged = _logits(load_model(str(out), "float32", "cpu").model, ids)
    assert (merged - untrained).abs().max() > 1e-2  # training moved it
    assert torch.allclose(_logits(with_adapter.eval(), ids), merged, atol=1e-4)  # base + adapter = merged


def test_adapter_only_writes_no_merged_model(base, tmp_path):
    result = sft(ROWS, tmp_path / "out", loaded=fresh(base), **FAST, max_steps=1, lora_r=4, save="adapter")
    assert (tmp_path / "out" / "adapter" / "adapter_config.json").is_file()
    assert not (tmp_path / "out" / "model.safetensors").exists() and (tmp_path / "out" / "README.md").is_file()
    assert not hasattr(result.model, "peft_config")  # in memory it is still the merged model
    with pytest.raises(GrapeError, match="save adapter writes a PEFT adapter: train one with --use_peft"):
        sft(ROWS, tmp_path / "full", loaded=fresh(base), **FAST, max_steps=1, save="adapter")


def test_a_bf16_run_is_saved_in_bf16(base, tmp_path):
    result = sft(ROWS, tmp_path / "out", loaded=fresh(base), **{**FAST, "precision": "bf16"}, max_steps=1)
    saved = load_file(tmp_path / "out" / "model.safetensors")
    assert {t.dtype for t in saved.values()} == {torch.bfloat16}
    assert json.loads((tmp_path / "out" / "config.json").read_text())["dtype"] == "bfloat16"
    assert next(result.model.parameters()).dtype == torch.bfloat16
    assert result.settings.model == base.identity["spec"]  # the model given, not grape's default
    fp32 = sft(ROWS, tmp_path / "fp32", loaded=fresh(base), **FAST, max_steps=1)
    assert {t.dtype for t in load_file(tmp_path / "fp32" / "model.safetensors").values()} == {torch.float32}
    assert next(fp32.model.parameters()).dtype == torch.float32


def test_the_model_card_says_what_was_trained_on_what_and_how(lora_both, selection, tiny_model_dir):
    result, out = lora_both
    card = (out / "README.md").read_text()
    header = yaml.safe_load(card.split("---")[1])
    assert header["library_name"] == "transformers" and header["tags"] == ["grape", "sft", "trl", "peft"]
    assert "base_model" not in header  # a local directory is no Hub id
    assert f"`{tiny_model_dir}` (gemma3_text, " in card
    assert f"`{selection}`: 4 examples, {result.metrics['response_tokens']} response tokens" in card
    assert ("Selected by `grape select` from `runs/scores.parquet`: strategy `grape`, top 1 per instruction, "
            "verified-correct candidates only; 4 of 11 scored candidates over 4 instructions.") in card  # fmt: skip
    assert f"Scored by `{tiny_model_dir}` with template `raw` (EOS not scored): GRAPE keeps the candidates" in card
    assert "| m1 | 6 | 3 | 75.0% |" in card and "| m2 | 5 | 1 | 25.0% |" in card
    assert "| template | raw |" in card and "| lora_r | 4 |" in card and "| lr | 0.01 |" in card
    assert f"- final loss: {result.metrics['loss_last']:.4f} nats per response token" in card
    assert "- steps: 2" in card
    assert "the model in float32 (LoRA merged into the weights); the PEFT adapter in `adapter/`" in card
    assert "```bash\ngrape sft x\n```" in card


def test_model_template_and_eos_come_from_the_selections_sidecar(lora_both, tiny_model_dir):
    result, out = lora_both
    assert (result.settings.model, result.settings.template, result.settings.eos) == (str(tiny_model_dir), "raw",
                                                                                      False)  # fmt: skip
    assert yaml.safe_load((out / "grape-sft.yaml").read_text())["template"] == "raw"


def test_a_different_template_warns_and_the_bar_shows(base, selection, tmp_path, capsys):
    result = sft(selection, tmp_path / "out", loaded=fresh(base), **FAST, max_steps=2, template="paper")
    err = " ".join(capsys.readouterr().err.split())
    assert result.settings.template == "paper"
    assert "warning: the selection was scored with template 'raw' but sft uses 'paper'" in err
    assert "2/2 [" in err  # the trainer's progress bar
    assert "scored with model" not in err  # the model given is the one that scored it
    card = (tmp_path / "out" / "README.md").read_text()
    assert f"grape sft {selection} -o {tmp_path / 'out'} --config {tmp_path / 'out' / 'grape-sft.yaml'}" in card
