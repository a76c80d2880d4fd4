"""Fixtures of the training tests: the tiny Gemma 3 with the real tokenizer, and a tiny Llama with SmolLM2's, loaded
once per module."""

import pytest

from grape.models.load import LoadedModel, load_model


@pytest.fixture(scope="module")
def base(tiny_model_dir) -> LoadedModel:
    return load_model(str(tiny_model_dir), "float32", "cpu")


@pytest.fixture(scope="module")
def smol_base(tmp_path_factory) -> LoadedModel:
    """A tiny random Llama with SmolLM2's tokenizer (49k entries, a fifth of Gemma's, and a chat template): a
    trainer's step is several times faster than the tiny Gemma's, for tests that only need some real training."""
    from tiny_models import tiny_llama
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    path = tmp_path_factory.mktemp("tiny-smol")
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return load_model(str(path), "float32", "cpu")
