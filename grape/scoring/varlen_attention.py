"""Packed attention by variable-length flash kernels: the packed layout's rule without its square.

A packed row (packing.py) holds groups ``[prompt][r1][r2]...``: the prompt attends causally to itself, each
response to the whole prompt and causally to itself. The dense mask makes a kernel compute each row's square
(eight groups of 512 tokens in a 4,096-token row: about 8 times the work); on a GPU it also makes SDPA repeat
grouped key heads to the query heads. Here the rule is two calls of FlashAttention's variable-length kernel over
the batch's tokens laid end to end ([tokens, heads, dim], grouped heads read as they are):

- **over the prompt**: each *unit* (a group, or a row's padding) attends, without a causal mask, to the first
  ``unit_keys`` of its tokens (its prompt; the kernel's ``seqused_k``). A response's queries get what they see of
  the prompt; the prompt's own queries are overwritten below.
- **over itself**: each *run* (a prompt, a response, a row's padding) attends causally to itself.

A response's attention is the two merged by their log-sum-exps (`merge_attention`, one pass); every other token
takes the second call's. Padding attends causally within its run instead of only to itself: nothing attends to it
and its outputs are never scored.

`flash_varlen` runs PyTorch's FlashAttention kernel (CUDA, float16 / bfloat16: `flash_runs`); on a CPU
`reference_varlen` computes the same thing one sequence at a time with a written-out mask (a correctness path:
the CPU's fast attention is ``segments``). On a GPU where the kernel cannot run (float32) the engine uses the
dense mask, as it does where a sliding window binds (a position at or past it) or the model soft-caps its
attention logits: there the rule above is not the model's (`covers`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grape.models.attention_implementation import attending_with
from grape.models.segment_attention import merge_attention, segment_mask

PACKED_VARLEN = "grape_packed_varlen"
FLASH_DTYPES = (torch.float16, torch.bfloat16)
FLASH_MAX_HEAD_DIM = 256


@dataclass(frozen=True)
class VarlenLayout:
    """Where the units and runs of a packed batch lie in its B·T tokens laid end to end (host tensors)."""

    unit_starts: torch.Tensor  # [U + 1] int32: token offsets of the units, then the end
    unit_keys: torch.Tensor  # [U] int32: keys each unit's queries see over the prompt (its prompt; padding: all)
    run_starts: torch.Tensor  # [R + 1] int32: token offsets of the runs, then the end
    sees_prompt: torch.Tensor  # [B·T] bool: a response token (its group's prompt has a token at least: packing.py)
    longest_unit: int
    longest_run: int

    def attention_kwargs(self, to: Callable[[torch.Tensor], torch.Tensor]) -> dict[str, Any]:
        """The keyword arguments the decoder passes on to `packed_varlen_forward`, tensors sent by ``to``."""
        return {
            "varlen_unit_starts": to(self.unit_starts),
            "varlen_unit_keys": to(self.unit_keys),
            "varlen_run_starts": to(self.run_starts),
            "varlen_sees_prompt": to(self.sees_prompt),
            "varlen_longest_unit": self.longest_unit,
            "varlen_longest_run": self.longest_run,
        }


def varlen_layout(segment: torch.Tensor, branch: torch.Tensor) -> VarlenLayout:
    """The units and runs of a packed batch.

    Args:
        segment, branch: [B, T] long, as in `PackedBatch` (segment: the group, -1 for padding; branch: 0 for the
            prompt, k + 1 for response k).
    """
    t = segment.shape[1]
    seg, br = segment.reshape(-1).numpy(), branch.reshape(-1).numpy()
    row = np.arange(seg.size) // t
    new_unit = np.ones(seg.size, dtype=bool)
    new_unit[1:] = (seg[1:] != seg[:-1]) | (row[1:] != row[:-1])
    new_run = new_unit.copy()
    new_run[1:] |= br[1:] != br[:-1]
    unit_starts, run_starts = np.flatnonzero(new_unit), np.flatnonzero(new_run)
    unit_of_token = np.cumsum(new_unit) - 1
    padding = seg < 0
    prompt_tokens = np.bincount(unit_of_token, weights=~padding & (br == 0), minlength=unit_starts.size).astype(int)
    unit_lengths = np.diff(np.append(unit_starts, seg.size))
    unit_keys = np.where(padding[unit_starts], unit_lengths, prompt_tokens)
    sees_prompt = ~padding & (br > 0)
    run_lengths = np.diff(np.append(run_starts, seg.size))

    def offsets(starts: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.append(starts, seg.size).astype(np.int32))

    return VarlenLayout(
        unit_starts=offsets(unit_starts),
        unit_keys=torch.from_numpy(unit_keys.astype(np.int32)),
        run_starts=offsets(run_starts),
        sees_prompt=torch.from_numpy(sees_prompt),
        longest_unit=int(unit_lengths.max(initial=0)),
        longest_run=int(run_lengths.max(initial=0)),
    )


def covers(positions: torch.Tensor, windows: dict[str, int | None], softcap: float | None) -> bool:
    """Whether the two calls give a batch the model's attention: no logit soft-capping, and every position
    ([B, T]) under every sliding window (a window that binds cuts the prompt keys by position)."""
    bound = min((w for w in windows.values() if w is not None), default=None)
    return softcap is None and (bound is None or int(positions.max()) < bound)


def reference_varlen(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, starts: torch.Tensor, longest: int,
    causal: bool, scale: float, keys_used: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """FlashAttention's variable-length forward, one sequence at a time in float32 (what `flash_varlen` computes).

    Args:
        query: [N, H, D]; key, value: [N, H_kv, D] (H a multiple of H_kv); sequence i is tokens
            ``starts[i]:starts[i + 1]`` of each, its queries attend to the first ``keys_used[i]`` of its keys (all
            without ``keys_used``); ``causal``: query j sees keys up to j (top-left: queries and keys both start at
            the sequence's start; with ``keys_used`` only a non-causal call is made here).
        longest: the longest sequence (FlashAttention's max_seqlen; unused here).

    Returns:
        ([N, H, D] in the query's dtype, [H, N] float32 log-sum-exps); a query with no key: 0 and −inf.
    """
    n, heads, _ = query.shape
    out = torch.zeros_like(query)
    lse = torch.full((heads, n), float("-inf"), dtype=torch.float32, device=query.device)
    groups = heads // key.shape[1]
    bounds = starts.tolist()
    used = keys_used.tolist() if keys_used is not None else None
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        k_end = a + used[i] if used is not None else b
        if k_end == a or b == a:
            continue
        q = query[a:b].float().transpose(0, 1)  # [H, L, D]
        k = key[a:k_end].float().transpose(0, 1).repeat_interleave(groups, 0)
        v = value[a:k_end].float().transpose(0, 1).repeat_interleave(groups, 0)
        scores = q @ k.transpose(1, 2) * scale
        if causal:
            scores = scores.masked_fill(torch.ones_like(scores[0], dtype=torch.bool).triu(1), float("-inf"))
        lse[:, a:b] = scores.logsumexp(-1)
        out[a:b] = (scores.softmax(-1) @ v).transpose(0, 1).to(query.dtype)
    return out, lse


def flash_varlen(
    query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, starts: torch.Tensor, longest: int,
    causal: bool, scale: float, keys_used: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
    """`reference_varlen` by PyTorch's FlashAttention kernel (CUDA; float16 / bfloat16; heads of a multiple of 8
    dimensions, up to 256)."""
    out, lse, *_ = torch.ops.aten._flash_attention_forward(
        query, key, value, starts, starts, longest, longest, 0.0, causal, False, scale=scale, seqused_k=keys_used
    )
    if lse.shape != (query.shape[1], query.shape[0]):  # the varlen kernels' [heads, tokens] layout
        raise RuntimeError(f"FlashAttention returned log-sum-exps of shape {tuple(lse.shape)}, not [heads, tokens]")
    return out, lse


_eager_reference = torch.compiler.disable(reference_varlen)  # a compiled decoder runs it between its graphs


def flash_runs(device_type: str, dtype: torch.dtype, head_dim: int) -> bool:
    """Whether PyTorch's FlashAttention kernel takes these queries: CUDA, float16 / bfloat16, heads of a multiple
    of 8 dimensions up to 256."""
    return device_type == "cuda" and dtype in FLASH_DTYPES and head_dim <= FLASH_MAX_HEAD_DIM and head_dim % 8 == 0


def _kernel_for(query: torch.Tensor) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    return flash_varlen if flash_runs(query.device.type, query.dtype, query.shape[-1]) else _eager_reference


def packed_varlen_forward(
    module: Any,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: Any,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature over a `VarlenLayout` (its ``varlen_*`` keyword arguments).

    Args:
        query: [B, H, T, D]; key, value: [B, H_kv, T, D].
        attention_mask: None (the engine passes the layout instead).

    Returns:
        ([B, T, H, D], None).
    """
    if kwargs.get("softcap") is not None:
        raise ValueError("packed varlen attention does not soft-cap attention logits: the engine uses the mask here")
    rows, heads, t, dim = query.shape
    q = query.transpose(1, 2).reshape(rows * t, heads, dim)
    k = key.transpose(1, 2).reshape(rows * t, key.shape[1], dim)
    v = value.transpose(1, 2).reshape(rows * t, value.shape[1], dim)
    scale = scaling if scaling is not None else dim**-0.5
    kernel = _kernel_for(q)
    units, longest_unit = kwargs["varlen_unit_starts"], kwargs["varlen_longest_unit"]
    on_prompt, lse_prompt = kernel(q, k, v, units, longest_unit, False, scale, kwargs["varlen_unit_keys"])
    on_self, lse_self = kernel(q, k, v, kwargs["varlen_run_starts"], kwargs["varlen_longest_run"], True, scale)
    lse_prompt = lse_prompt.masked_fill(~kwargs["varlen_sees_prompt"], float("-inf"))  # only responses merge
    out = merge_attention(on_prompt, lse_prompt.T, on_self, lse_self.T)
    return out.reshape(rows, t, heads, dim), None


@contextmanager
def varlen_attention(model: Any) -> Iterator[None]:
    """Within the block the model attends with `packed_varlen_forward` (no mask built: the layout comes in the
    decoder's keyword arguments); its own implementation comes back after, also after an error."""
    with attending_with(model, PACKED_VARLEN, packed_varlen_forward, segment_mask):  # segment_mask: None here
        yield
