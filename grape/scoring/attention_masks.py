"""Who sees whom in a packed batch (packing.py), as the attention kernels take it.

One rule, `packed_sees`, in two forms:

- `packed_attention_mask`: a dense boolean [B, 1, T, T] mask for SDPA (``attention="mask"``). SDPA computes
  the whole square of each row and repeats grouped key heads to the query heads whenever a mask is given.
- `packed_block_mask`: a FlexAttention ``BlockMask`` (``attention="flex"``): the kernel skips the blocks of
  128 × 128 that nobody sees (other groups' tokens, other responses) and reads grouped key heads as they are.
  `flex_attention` switches a model to `packed_flex_forward` for a block, and back after.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

from grape.models.attention_implementation import attending_with

PACKED_FLEX = "grape_packed_flex"
TRITON_FLEX_MIN_HEAD_DIM = 16  # torch 2.11's Triton FlexAttention: "embedding dimension ... must be at least 16"


def packed_sees(
    segment: torch.Tensor,
    branch: torch.Tensor,
    position: torch.Tensor,
    sliding_window: int | None = None,
    in_place: bool = False,
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """The packed layout's attention rule as a function of (row, query, key) indices.

    Args:
        segment, branch, position: [B, T] as in `PackedBatch` (segment -1 = padding; branch 0 = prompt, k+1 =
            response k).
        sliding_window: if set, a query sees keys fewer than this many positions behind it.
        in_place: combine the conditions into the first one's tensor (one [B, T, T] allocation for a dense
            mask). FlexAttention needs the default: its compiled kernel lowers the rule as a pointwise subgraph,
            where an in-place op cannot be lowered.

    Returns:
        ``sees(b, q, k)``: bool, broadcast over index tensors of any matching shapes. Query q sees key k when
        both are in the same group, k is not after q, and k is a prompt token or in q's own response. Padding
        sees only itself (so no query's row is empty).
    """

    both, either = (operator.iand, operator.ior) if in_place else (operator.and_, operator.or_)

    def sees(b: torch.Tensor, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        q_segment, k_segment = segment[b, q], segment[b, k]
        out = q_segment == k_segment  # a fresh [B, T, T] (or per-index) tensor; one condition alive at a time
        out = both(out, k_segment >= 0)
        out = both(out, k <= q)
        out = both(out, (branch[b, k] == 0) | (branch[b, k] == branch[b, q]))
        if sliding_window is not None:
            out = both(out, position[b, k] + sliding_window > position[b, q])
        return either(out, (q_segment < 0) & (q == k))

    return sees


def packed_attention_mask(
    segment: torch.Tensor, branch: torch.Tensor, position: torch.Tensor, sliding_window: int | None = None
) -> torch.Tensor:
    """[B, 1, T, T] bool (True = may attend): `packed_sees` over every (query, key) of every row."""
    rows, t = segment.shape
    index = torch.arange(t, device=segment.device)
    b = torch.arange(rows, device=segment.device)[:, None, None]
    sees = packed_sees(segment, branch, position, sliding_window, in_place=True)
    return sees(b, index[None, :, None], index[None, None, :])[:, None]


def packed_block_mask(
    segment: torch.Tensor, branch: torch.Tensor, position: torch.Tensor, sliding_window: int | None = None
) -> Any:
    """A FlexAttention BlockMask of `packed_sees` for [B, T] rows: shape (B, 1, T, T), one mask for all heads."""
    from torch.nn.attention.flex_attention import create_block_mask

    sees = packed_sees(segment, branch, position, sliding_window)
    rows, t = segment.shape
    return create_block_mask(lambda b, h, q, k: sees(b, q, k), rows, None, t, t, device=segment.device)


def packed_flex_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature over a `packed_block_mask`.

    Args:
        query: [B, H, T, D]; key, value: [B, H_kv, T, D], read as they are (H a multiple of H_kv).
        attention_mask: the BlockMask the engine passed for this layer's kind.
        softcap: Gemma 2's attention-logit soft-capping, as a score_mod.

    Returns:
        ([B, T, H, D], None). Compiled FlexAttention (Triton) on a GPU for heads of 16 or more; elsewhere its eager
        form, which computes the scores densely (a correctness path: the CPU's fast attention is ``segments``).
    """
    from torch.nn.attention.flex_attention import flex_attention as traced_flex

    def capped(score, b, h, q, k):
        return softcap * torch.tanh(score / softcap)

    if query.device.type != "cuda" or query.shape[-1] < TRITON_FLEX_MIN_HEAD_DIM:
        kernel = _eager_flex()  # also inside a compiled decoder: Inductor's C++ FlexAttention fails to build
        # sliding-window masks at dynamic shapes (torch 2.13), and its Triton one takes no heads under 16
    else:  # a compiled decoder traces FlexAttention into its graph; an eager one calls the compiled kernel
        kernel = traced_flex if torch.compiler.is_compiling() else _compiled_flex()
    out = kernel(query, key, value, score_mod=capped if softcap else None, block_mask=attention_mask,
                 scale=scaling, enable_gqa=query.shape[1] != key.shape[1])  # fmt: skip
    return out.transpose(1, 2).contiguous(), None


@functools.cache
def _compiled_flex() -> Callable[..., torch.Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compile(flex_attention)


@functools.cache
def _eager_flex() -> Callable[..., torch.Tensor]:
    from torch.nn.attention.flex_attention import flex_attention

    return torch.compiler.disable(flex_attention)


@contextmanager
def flex_attention(model: Any) -> Iterator[None]:
    """Within the block the model attends with `packed_flex_forward` (its attention mask: a BlockMask per layer
    kind); its own implementation comes back after, also after an error."""
    from transformers.masking_utils import flex_attention_mask

    with attending_with(model, PACKED_FLEX, packed_flex_forward, flex_attention_mask):
        yield
