"""Random-weight models of real shapes, built from a config on the target device (no download).

Throughput depends on a model's shape, not on its weights: a Llama-3.1-8B-shaped model with random
weights costs the same FLOPs and memory traffic as the real one. Its scores mean nothing, so the
benchmarks use these only for speed, never for agreement with the float32 reference on real text.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, LlamaConfig

from grape.models.load import LoadedModel

# The published configs of these models (hidden sizes, layers, heads, vocabulary, RoPE base).
SHAPES = {
    "llama-3.1-8b": dict(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
        num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, max_position_embeddings=131072,
        tie_word_embeddings=False,
    ),
    "llama-3.2-1b": dict(
        vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, rope_theta=500000.0, max_position_embeddings=131072,
        tie_word_embeddings=True,
    ),
}  # fmt: skip


def random_model(shape: str, dtype: torch.dtype, device: torch.device, seed: int = 0) -> LoadedModel:
    """A model of ``shape`` with random weights, created directly on ``device`` (an 8B model in bf16 is
    16 GB: built on the GPU it takes seconds, on the CPU first it would take minutes and the host's memory)."""
    torch.manual_seed(seed)
    config = LlamaConfig(**SHAPES[shape], bos_token_id=128000, eos_token_id=128001)
    with torch.device(device):
        model = AutoModelForCausalLM.from_config(config, dtype=dtype, attn_implementation="sdpa").eval()
    identity = {"spec": f"random:{shape}", "n_parameters": sum(p.numel() for p in model.parameters())}
    return LoadedModel(model, None, identity)
