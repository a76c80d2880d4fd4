"""Shared fixtures: the embedded models (loaded once per session), a tiny random model with a real
tokenizer, and the shared public data beside the project (skipped with a reason when absent)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # tests/reference.py, tiny_models.py, shared_data.py


@pytest.fixture
def heap_at_steps():
    """Whether glibc's heap was kept (grape.models.cpu_heap) at each optimizer step the test runs, and whether it can
    be here (glibc on Linux, no allocator chosen by the environment): ``(seen, switchable)``."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    from grape.models.cpu_heap import heap_is_kept, kept_heap

    with kept_heap() as switchable:
        pass
    seen: list[bool] = []
    handle = register_optimizer_step_pre_hook(lambda *_: seen.append(heap_is_kept()))
    yield seen, switchable
    handle.remove()


@pytest.fixture(scope="session")
def gemma():
    """The embedded default target, float32 on CPU."""
    from grape.models.load import load_model

    return load_model("gemma-3-270m", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def smollm2():
    from grape.models.load import load_model

    return load_model("smollm2-135m-instruct", dtype="float32", device="cpu")


@pytest.fixture(scope="session")
def tiny_smol_dir(tmp_path_factory):
    """A tiny random Llama (untied head, seed 0) saved with SmolLM2's tokenizer: 49k entries, a fifth of Gemma's,
    and a chat template, so it loads, builds stop criteria and takes trainer steps fast."""
    from tiny_models import tiny_llama
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    path = tmp_path_factory.mktemp("tiny-smol")
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, gemma):
    """A tiny random Gemma 3 (hidden 32, 3 layers) saved with the real Gemma tokenizer: loads in a blink."""
    from tiny_models import tiny_gemma3

    path = tmp_path_factory.mktemp("tiny-gemma3")
    model = tiny_gemma3(vocab_size=gemma.model.config.vocab_size, sliding_window=16)
    model.save_pretrained(path)
    gemma.tokenizer.save_pretrained(path)
    return path
