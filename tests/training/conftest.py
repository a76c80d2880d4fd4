"""Fixtures of the training tests: the tiny Gemma 3 with the real tokenizer, and a tiny Llama with SmolLM2's, loaded
once per module."""

import pytest

from grape.models.load import LoadedModel, load_model


@pytest.fixture(scope="module")
def base(tiny_model_dir) -> LoadedModel:
    return load_model(str(tiny_model_dir), "float32", "cpu")


@pytest.fixture(scope="module")
def smol_base(tiny_smol_dir) -> LoadedModel:
    """The tiny random Llama with SmolLM2's tokenizer (tests/conftest.py), loaded once per module: a trainer's step
    is several times faster than the tiny Gemma's, for tests that only need some real training."""
    return load_model(str(tiny_smol_dir), "float32", "cpu")
