"""Tiny random models on a real tokenizer for the decoding tests (a module apart from conftest.py: several
conftest.py files shadow each other on import)."""

from __future__ import annotations

import torch
from tiny_models import tiny_gemma3, tiny_llama
from transformers import AutoModelForSequenceClassification

from grape.decoding.reward import RewardModel
from grape.models.load import LoadedModel


def causal(tokenizer, seed: int, shape: str = "llama") -> LoadedModel:
    """A tiny random causal LM on ``tokenizer`` (its EOS is the model's end token)."""
    if shape == "llama":
        model = tiny_llama(vocab_size=len(tokenizer), seed=seed)
    else:
        model = tiny_gemma3(vocab_size=len(tokenizer), sliding_window=4, seed=seed)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.bos_token_id = tokenizer.bos_token_id
    model.config.eos_token_id = tokenizer.eos_token_id
    return LoadedModel(model, tokenizer, {"spec": f"tiny-{shape}-{seed}"})


def reward_model(tokenizer, seed: int, shape: str = "llama", template: str = "paper") -> RewardModel:
    """A tiny random reward model (a one-output sequence-classification head) on ``tokenizer``."""
    config = causal(tokenizer, seed, shape).model.config
    config.num_labels = 1
    torch.manual_seed(seed)
    model = AutoModelForSequenceClassification.from_config(config, dtype=torch.float32, attn_implementation="sdpa")
    return RewardModel(model.eval(), tokenizer, template, True, {"spec": f"tiny-rm-{seed}"})
