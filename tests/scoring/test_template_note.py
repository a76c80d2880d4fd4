"""The warning when a model whose tokenizer has a chat template is scored with `paper` (real tokenizers: the
embedded SmolLM2-Instruct has a chat template, the embedded Gemma 3 base model has none)."""

import json

import pytest
from tiny_models import tiny_llama
from transformers import AutoTokenizer

from grape.cli import main
from grape.console import console
from grape.models.load import resolve_model_dir
from grape.scoring.template_note import chat_template_warning


@pytest.fixture(scope="module")
def chat_model_dir(tmp_path_factory):
    """A tiny random Llama saved with SmolLM2-Instruct's tokenizer, chat template included."""
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    path = tmp_path_factory.mktemp("tiny-chat")
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_the_warning_says_what_chat_would_do_and_only_when_it_applies(chat_model_dir):
    chat = AutoTokenizer.from_pretrained(chat_model_dir)
    base = AutoTokenizer.from_pretrained(resolve_model_dir("gemma-3-270m")[0])
    assert chat.chat_template and not base.chat_template
    warning = chat_template_warning(chat, "paper", "m")
    assert warning.startswith("m's tokenizer has a chat template, but the candidates are scored with --template paper")
    assert "--template chat renders each prompt with its chat template" in warning
    assert chat_template_warning(chat, "chat", "m") is None and chat_template_warning(chat, "raw", "m") is None
    assert chat_template_warning(base, "paper", "gemma-3-270m") is None


def test_score_and_its_dry_run_print_it(chat_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console, "width", 400)
    rows = [{"id": "a", "prompt": "Say hi.", "candidates": [{"text": "Hi!"}, {"text": "Hello there."}]}]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    model = ["--model", str(chat_model_dir), "--device", "cpu"]
    said = "tokenizer has a chat template, but the candidates are scored with --template paper"
    for extra in (["--dry-run", "--no-measure"], []):
        assert main(["score", str(path), "-o", str(tmp_path / "s.parquet"), *model, *extra]) == 0
        assert capsys.readouterr().err.count(said) == 1
    assert main(["score", str(path), "-o", str(tmp_path / "c.parquet"), *model, "--template", "chat"]) == 0
    assert said not in capsys.readouterr().err
