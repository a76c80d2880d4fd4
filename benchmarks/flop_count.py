"""The arithmetic each scoring method asks for, counted from the model's shape.

What is counted (FLOPs, one multiply-add = 2):
- the weight matmuls: 2 x (parameters other than the embedding table and the LM head) per computed
  token (norm weights are counted too; they are a rounding error);
- attention: QK^T and PV, 2 matmuls x 2 FLOPs x the query width (heads x head_dim) per layer per
  (query, key) pair a causal mask allows: n(n+1)/2 pairs for a sequence of n tokens;
- the LM head: 2 x vocab x hidden per row it is applied to.
Not counted: embedding lookups, norms, activations, rotary embeddings, softmax and log_softmax
(elementwise, no matmul), and sliding-window limits (the count assumes full causal attention, which
overstates layers with a window shorter than the sequence).

The attention term is what a causal kernel needs; a kernel given an explicit mask (padded batches,
the engine's packed rows) may compute the whole square and mask it away. That waste is a matter of
kernels, not of the method, so it shows up as a lower achieved FLOP rate, not here.

Per method, for one instruction with a P-token prompt and responses of R_1..R_K tokens:
- engine: the prompt once, each response after it (prefix sharing); the head only on the rows that
  predict a response token (sum R_k rows);
- naive: each pair on its own, P + R_k tokens, the head on every position;
- padded: pairs in batches, each row as long as its batch's longest pair, pad tokens computed like
  the others, the head on every position.
The ratio naive / engine is the speed-up the engine would show at equal efficiency (FLOPs per second).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelShape:
    body_params: int  # weights used once per computed token: all but the embedding table and the LM head
    head_params: int  # LM head, vocab x hidden
    layers: int
    attention_width: int  # query width, attention heads x head_dim


def shape_of(model) -> ModelShape:
    """The counting shape of a Hugging Face causal LM (parameters counted from the instance, layers and
    heads from its config)."""
    config = model.config
    head = model.get_output_embeddings().weight.numel()
    body = sum(p.numel() for p in model.parameters()) - head
    if not getattr(config, "tie_word_embeddings", False):
        body -= model.get_input_embeddings().weight.numel()
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return ModelShape(body, head, config.num_hidden_layers, config.num_attention_heads * head_dim)


def causal_pairs(n: int) -> int:
    """(query, key) pairs a causal mask allows in a sequence of n tokens: query i sees keys 0..i."""
    return n * (n + 1) // 2


def forward_flops(shape: ModelShape, tokens: int, attention_pairs: int, head_rows: int) -> float:
    """FLOPs of one forward pass over ``tokens`` computed tokens with ``attention_pairs`` (query, key)
    pairs, the LM head applied to ``head_rows`` rows."""
    return (
        2.0 * shape.body_params * tokens
        + 4.0 * shape.layers * shape.attention_width * attention_pairs
        + 2.0 * shape.head_params * head_rows
    )


def engine_flops(shape: ModelShape, prompt: int, responses: Sequence[int]) -> float:
    """One prompt of ``prompt`` tokens shared by responses of the given lengths: the prompt's causal
    triangle once, each response token sees the whole prompt and its own response's causal prefix."""
    pairs = causal_pairs(prompt) + sum(r * prompt + causal_pairs(r) for r in responses)
    return forward_flops(shape, prompt + sum(responses), pairs, sum(responses))


def naive_flops(shape: ModelShape, prompt: int, responses: Sequence[int]) -> float:
    """Each (prompt, response) pair on its own, the LM head on all of its positions."""
    return sum(forward_flops(shape, prompt + r, causal_pairs(prompt + r), prompt + r) for r in responses)


def padded_flops(shape: ModelShape, pair_lengths: Sequence[int], batch_size: int) -> float:
    """Pairs of the given lengths (prompt + response, in scoring order) in consecutive batches of
    ``batch_size``; every row of a batch right-padded to its longest pair and computed in full."""
    total = 0.0
    for start in range(0, len(pair_lengths), batch_size):
        batch = pair_lengths[start : start + batch_size]
        width = max(batch)
        total += len(batch) * forward_flops(shape, width, causal_pairs(width), width)
    return total
