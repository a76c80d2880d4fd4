"""Tiny random models saved beside a real embedded tokenizer, for the PPO loop's tests."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory):
    """A tiny random Llama (untied head) with SmolLM2's tokenizer (vocab 49,152)."""
    from tiny_models import tiny_llama
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    path = tmp_path_factory.mktemp("tiny-llama-smollm2")
    tiny_llama(vocab_size=len(tokenizer), seed=1).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_gemma_dir(tmp_path_factory):
    """A tiny random Gemma 3 (sliding window 4, soft-capping, tied head) with Gemma's tokenizer."""
    from tiny_models import tiny_gemma3
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("gemma-3-270m")[0])
    path = tmp_path_factory.mktemp("tiny-gemma3-rl")
    tiny_gemma3(vocab_size=len(tokenizer), sliding_window=4, seed=1).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
