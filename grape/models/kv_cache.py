"""The two names transformers has used for a forward pass's KV cache, in one place.

transformers 5.x renamed the ``past_key_values`` argument and output to ``cache`` (the old name goes in 5.40).
Every loop that feeds a cache back (the RL sampler, the reward-guided decoder, the reward scorer, the search's
generator) asks here which name a model takes and reads the cache from an output under either name; and how many
leading ids several id lists share (`shared_prefix_length`), which is what a cache of ids may be reused for.
"""

from __future__ import annotations

import inspect
from typing import Any


def cache_keyword(model: Any) -> str:
    """``cache`` or ``past_key_values``: the name ``model``'s forward takes the KV cache under (a PeftModel is
    asked about the model it wraps)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def cache_of(output: Any) -> Any:
    """The KV cache a forward pass returned, under either name."""
    return output.get("cache") or output.get("past_key_values")


def shared_prefix_length(rows: list[list[int]]) -> int:
    """The length of the longest common prefix of ``rows``."""
    first, length = rows[0], min(len(r) for r in rows)
    for position in range(length):
        if any(r[position] != first[position] for r in rows[1:]):
            return position
    return length
