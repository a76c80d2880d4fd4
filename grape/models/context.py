"""How many tokens a loaded model takes: the one limit that scoring and training both check against."""

from __future__ import annotations

from grape.models.load import LoadedModel


def context_length(loaded: LoadedModel) -> int:
    """The longest prompt + response the model takes: its position limit or the tokenizer's, if lower."""
    limits = [getattr(loaded.model.config, "max_position_embeddings", None)]
    model_max = getattr(loaded.tokenizer, "model_max_length", None)
    if model_max and model_max < 10**9:  # tokenizers without a limit report a huge sentinel
        limits.append(model_max)
    return min(x for x in limits if x) if any(limits) else 10**9
