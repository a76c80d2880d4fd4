"""Fixtures of the training tests: the tiny Gemma 3 with the real tokenizer, loaded once per module."""

import pytest

from grape.models.load import LoadedModel, load_model


@pytest.fixture(scope="module")
def base(tiny_model_dir) -> LoadedModel:
    return load_model(str(tiny_model_dir), "float32", "cpu")
