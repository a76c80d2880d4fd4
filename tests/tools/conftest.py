"""The embedded models' tokenizers (no weights loaded): SmolLM2's BPE and Gemma 3's SentencePiece."""

import pytest


def _tokenizer(alias):
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    return AutoTokenizer.from_pretrained(resolve_model_dir(alias)[0])


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    return _tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def gemma_tokenizer():
    return _tokenizer("gemma-3-270m")
