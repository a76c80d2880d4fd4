"""A transformers model switched to one of grape's attention functions for the length of a block.

grape's packed layouts attend in their own ways (per run on a CPU: segment_attention.py; FlexAttention's block
mask and FlashAttention's variable-length calls on a GPU: grape/scoring/). Each is registered with transformers
under its own name, with the function that builds (or skips) its masks, and the model is switched to it only
while grape runs it, so any other user of the model, and a baseline in the same process, runs the original.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def attending_with(
    model: Any, name: str, forward: Callable[..., Any], mask_function: Callable[..., Any]
) -> Iterator[None]:
    """Within the block ``model`` attends with ``forward`` (transformers' attention-function signature) and builds
    its masks with ``mask_function``, both registered under ``name``; the model's own implementation comes back
    after, also after an error."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(name, forward)
    AttentionMaskInterface.register(name, mask_function)
    before = getattr(model.config, "_attn_implementation", None)
    model.set_attn_implementation(name)
    try:
        yield
    finally:
        model.set_attn_implementation(before)
