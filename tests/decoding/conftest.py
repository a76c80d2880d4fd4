"""Fixtures of the decoding tests: tiny random models on SmolLM2's real tokenizer (49k tokens: small heads).

π_sft, ρ_BL and r are different random models, so that choices, rollouts and rewards all differ; one Gemma 3
shape with a sliding window of 4 makes every prefix longer than the window (the caches' hard case).
"""

from __future__ import annotations

import pytest
import torch
from decoding_models import causal, reward_model
from transformers import AutoTokenizer

from grape.models.load import resolve_model_dir


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on the shared 2-core machine two threads run these small ops many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tokenizer():
    return AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])


@pytest.fixture(scope="module")
def sft(tokenizer):
    return causal(tokenizer, 0)


@pytest.fixture(scope="module")
def baseline(tokenizer):
    return causal(tokenizer, 1)


@pytest.fixture(scope="module")
def reward(tokenizer):
    return reward_model(tokenizer, 2)
