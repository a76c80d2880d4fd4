"""Fixtures of the generation tests: a tiny random Llama saved with SmolLM2's tokenizer (49k entries, a fifth
of Gemma's, so it loads and builds stop criteria fast; it has a chat template), made once per session."""

import pytest


@pytest.fixture(scope="session")
def tiny_smol_dir(tmp_path_factory):
    from tiny_models import tiny_llama
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    path = tmp_path_factory.mktemp("tiny-smol-generation")
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
