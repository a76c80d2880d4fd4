"""A tiny random Llama with SmolLM2's tokenizer, saved once per module: budget loads its models from a path, and
this one's trainer steps take well under a second."""

import pytest


@pytest.fixture(scope="module")
def smol_dir(tmp_path_factory):
    from tiny_models import tiny_llama
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    path = tmp_path_factory.mktemp("tiny-smol")
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
