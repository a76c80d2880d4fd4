"""How many tokens a loaded model takes: the one limit that scoring and training both check against."""

from __future__ import annotations

from typing import Any

from grape.models.load import LoadedModel


def context_length(loaded: LoadedModel) -> int:
    """The longest prompt + response the model takes: its position limit or the tokenizer's, if lower."""
    return context_length_of(loaded.model.config, loaded.tokenizer)


def context_length_of(config: Any, tokenizer: Any) -> int:
    """`context_length` from a model's config and tokenizer alone (no weights loaded: `grape score --dry-run`)."""
    limits = [getattr(config, "max_position_embeddings", None)]
    model_max = getattr(tokenizer, "model_max_length", None)
    if model_max and model_max < 10**9:  # tokenizers without a limit report a huge sentinel
        limits.append(model_max)
    return min(x for x in limits if x) if any(limits) else 10**9
