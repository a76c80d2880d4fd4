"""A PEFT adapter folder (`grape sft --save adapter`: OUTDIR, or OUTDIR/adapter) loads as its base model with the
adapter merged in, for every command that takes --model; its fingerprint is neither its base's nor another
adapter's; a base that is gone is a one-line error naming both folders."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from grape.cli import main
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.models.fingerprint import fingerprint_method, model_fingerprint
from grape.models.load import load_model, resolve_model_dir
from grape.training.sft import sft

ROWS = [
    {"id": "a", "prompt": "What is 2 + 3?", "completion": "2 + 3 = 5. The answer is 5."},
    {"id": "b", "prompt": "Name a primary colour.", "completion": "Blue is a primary colour."},
]
LORA = dict(max_steps=2, batch_size=2, lr=1e-2, lr_scheduler="constant", precision="fp32", lora_r=4, save="adapter",
            seed=0, template="chat")  # fmt: skip
IDS = torch.tensor([[1, 30, 400, 2000, 17, 9]])


@pytest.fixture(scope="module")
def adapter_run(tiny_smol_dir, tmp_path_factory):
    """`grape sft --save adapter` on the tiny Llama: OUTDIR holds no model, only OUTDIR/adapter."""
    out = tmp_path_factory.mktemp("sft-adapter") / "sft-ad"
    result = sft(ROWS, out, loaded=load_model(str(tiny_smol_dir), "float32", "cpu"), **LORA)
    assert not (out / "config.json").exists() and (out / "adapter" / "adapter_config.json").is_file()
    return out, result


def _logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model(IDS).logits


@pytest.mark.parametrize("folder", ["", "adapter"])
def test_an_adapter_folder_loads_as_its_base_with_the_adapter_merged_in(adapter_run, tiny_smol_dir, folder):
    out, trained = adapter_run
    loaded = load_model(str(out / folder), "float32", "cpu")
    assert torch.allclose(_logits(loaded.model), _logits(trained.model), atol=1e-5)
    assert not torch.allclose(_logits(loaded.model), _logits(load_model(str(tiny_smol_dir), "float32", "cpu").model))
    assert loaded.identity["kind"] == "adapter" and loaded.identity["adapter"] == str((out / "adapter").resolve())
    assert loaded.identity["base"] == {"spec": str(tiny_smol_dir), "kind": "local", "path": str(tiny_smol_dir)}
    assert loaded.tokenizer.get_vocab() == trained.tokenizer.get_vocab()


def test_grape_eval_takes_an_adapter_output(adapter_run, tmp_path):
    out, _ = adapter_run
    data = write_rows([{"id": "add", "prompt": "What is 2 + 3?", "answer": "5"}], tmp_path / "items.jsonl")
    argv = ["eval", "--model", str(out), "--data", str(data), "-o", str(tmp_path / "eval.jsonl"), "--device", "cpu"]
    assert main([*argv, "--max-new-tokens", "2"]) == 0
    assert [json.loads(line)["id"] for line in (tmp_path / "eval.jsonl").read_text().splitlines()] == ["add"]


def test_a_lora_trained_on_an_adapter_names_that_adapter_as_its_base(adapter_run, tmp_path):
    out, _ = adapter_run
    second = sft(ROWS, tmp_path / "second", loaded=load_model(str(out), "float32", "cpu"), **LORA)
    config = json.loads((tmp_path / "second" / "adapter" / "adapter_config.json").read_text())
    assert config["base_model_name_or_path"] == str((out / "adapter").resolve())  # not the first adapter's base
    loaded = load_model(str(tmp_path / "second"), "float32", "cpu")  # base + first adapter + second adapter
    assert torch.allclose(_logits(loaded.model), _logits(second.model), atol=1e-5)
    assert loaded.identity["base"]["kind"] == "adapter"


def test_a_base_that_cannot_be_found_is_one_line_naming_the_adapter_and_its_base(adapter_run, tmp_path, capsys):
    adapter = shutil.copytree(adapter_run[0] / "adapter", tmp_path / "moved")
    config = json.loads((adapter / "adapter_config.json").read_text())
    gone = str(tmp_path / "gone")
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": gone}))
    with pytest.raises(GrapeError, match=f"^{adapter}: a PEFT adapter whose base model {gone} .* cannot be found"):
        load_model(str(adapter), "float32", "cpu")
    data = write_rows([{"id": "a", "prompt": "2 + 3?", "answer": "5"}], tmp_path / "items.jsonl")
    assert main(["eval", "--model", str(adapter), "--data", str(data), "-o", str(tmp_path / "e.jsonl")]) == 2
    err = capsys.readouterr().err.strip()
    assert gone in err and str(adapter) in err and "Traceback" not in err
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": None}))
    with pytest.raises(GrapeError, match="names no base_model_name_or_path"):
        resolve_model_dir(str(adapter))


def test_the_fingerprint_tells_the_adapter_from_its_base_and_follows_both(adapter_run, tiny_smol_dir, tmp_path,
                                                                           monkeypatch):  # fmt: skip
    monkeypatch.setenv("GRAPE_CACHE_DIR", str(tmp_path / "cache"))  # file digests of this test's own
    base = shutil.copytree(tiny_smol_dir, tmp_path / "base")
    adapter = shutil.copytree(adapter_run[0] / "adapter", tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    (adapter / "adapter_config.json").write_text(json.dumps({**config, "base_model_name_or_path": str(base)}))
    first = model_fingerprint(str(adapter))
    assert first.startswith("adapter:") and "base model's fingerprint" in fingerprint_method(first)
    assert first != model_fingerprint(str(base)) and model_fingerprint(str(adapter)) == first
    weights = adapter / "adapter_model.safetensors"
    save_file({k: v + 0.1 for k, v in load_file(weights).items()}, weights)
    moved = model_fingerprint(str(adapter))
    assert moved != first
    save_file({k: v * 2 for k, v in load_file(base / "model.safetensors").items()}, base / "model.safetensors")
    assert model_fingerprint(str(adapter)) not in (first, moved)  # the same adapter on other base weights


def test_a_reward_model_trains_on_an_adapter_output(adapter_run):
    from transformers import AutoModelForSequenceClassification

    from grape.models.load import pretrained_model
    from grape.training.reward_model import reward_model

    out, trained = adapter_run
    body = pretrained_model(AutoModelForSequenceClassification, *resolve_model_dir(str(out)), num_labels=1).model
    merged = trained.model.model.state_dict()
    assert all(torch.allclose(v, merged[k], atol=1e-6) for k, v in body.state_dict().items())
    pairs = [{"prompt": "What is 2 + 3?", "chosen": "5.", "rejected": "6."}] * 2
    result = reward_model(pairs, None, model=str(out), max_steps=1, batch_size=2, lora_r=4, device="cpu")
    assert result.metrics["steps"] == 1
