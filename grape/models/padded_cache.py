"""One KV cache for rows of different lengths: each row's keys and values end at the last column, its earlier
columns are padding (masked out by the row's attention mask).

Continuous batching (grape.generation.continuous) and the search's sampler (grape.search.hf_generator) lay rows
out this way: rows that entered at different times, or continue different prompts, decode as one batch. A row
shorter than the cache is padded on the left; columns that are padding in every row are cut off; finished rows
are dropped. Only plain full-attention layers (transformers' ``DynamicLayer``) can be laid out so
(`mergeable`): a sliding-window layer keeps a window of columns of its own, which padding would shift.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer


class RoomyLayer(DynamicLayer):
    """A full-attention layer whose keys and values are views of buffers with room for ``ROOM`` more columns: a
    decoding step writes its column in place, where transformers' layer copies the whole cache into a new tensor
    (``torch.cat``) at every step. On a CPU that copy of a batch of long rows costs more than the model's products
    (12 rows of 1,400 columns of SmolLM2: 4.2 ms a layer, ~0.5 s a step, against ~0.1 s of products: pages of a
    fresh allocation touched for the first time). Rows selected or trimmed are copied into a new buffer once."""

    ROOM = 64

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            return super().update(key_states, value_states, *args, **kwargs)
        used, new = self.keys.shape[-2], key_states.shape[-2]
        buffers = getattr(self, "buffers", None)
        if not self._backed(buffers) or used + new > buffers[0].shape[-2]:
            buffers = self.buffers = tuple(_with_columns(t, used + new + self.ROOM) for t in (self.keys, self.values))
        buffers[0][:, :, used : used + new] = key_states
        buffers[1][:, :, used : used + new] = value_states
        self.keys, self.values = buffers[0][:, :, : used + new], buffers[1][:, :, : used + new]
        return self.keys, self.values

    def _backed(self, buffers: tuple[torch.Tensor, torch.Tensor] | None) -> bool:
        """Whether the keys and values are still the leading columns of the buffers (not rows selected since)."""
        return buffers is not None and all(t.data_ptr() == b.data_ptr() and t.shape[0] == b.shape[0]
                                           for t, b in zip((self.keys, self.values), buffers, strict=True))  # fmt: skip


def _with_columns(tensor: torch.Tensor, columns: int) -> torch.Tensor:
    """A new [B, H, columns, D] buffer whose leading columns hold ``tensor`` [B, H, L, D]."""
    batch, heads, length, width = tensor.shape
    buffer = tensor.new_empty(batch, heads, columns, width)
    buffer[:, :, :length] = tensor
    return buffer


def with_room(cache: Any) -> Any:
    """``cache`` with its plain full-attention layers made `RoomyLayer`s (in place)."""
    for layer in cache.layers:
        if type(layer) is DynamicLayer:
            layer.__class__ = RoomyLayer
    return cache


def mergeable(cache: Any) -> bool:
    """Whether every layer of ``cache`` is a plain full-attention one (its columns can be padded and joined)."""
    return all(type(layer) in (DynamicLayer, RoomyLayer) for layer in cache.layers)


def left_padded(cache: Any, mask: torch.Tensor, columns: int) -> tuple[Any, torch.Tensor]:
    """``cache`` and its [B, W] ``mask`` with ``columns`` padding columns put before the first (in place)."""
    if columns <= 0:
        return cache, mask
    for layer in cache.layers:
        layer.keys = torch.nn.functional.pad(layer.keys, (0, 0, columns, 0))
        layer.values = torch.nn.functional.pad(layer.values, (0, 0, columns, 0))
    return cache, torch.nn.functional.pad(mask, (columns, 0))


def joined(cache: Any, mask: torch.Tensor | None, fresh: Any, fresh_mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """The rows of ``cache`` then those of ``fresh`` in one cache, both padded on the left to the wider of the two
    (``cache`` None: ``fresh`` alone)."""
    if cache is None:
        return fresh, fresh_mask
    width, fresh_width = mask.shape[1], fresh_mask.shape[1]
    cache, mask = left_padded(cache, mask, fresh_width - width)
    fresh, fresh_mask = left_padded(fresh, fresh_mask, width - fresh_width)
    for layer, new in zip(cache.layers, fresh.layers, strict=True):
        layer.keys = torch.cat([layer.keys, new.keys])
        layer.values = torch.cat([layer.values, new.values])
    return cache, torch.cat([mask, fresh_mask])


def selected(cache: Any, index: torch.Tensor) -> Any:
    """The rows ``index`` [b] of ``cache`` (in place)."""
    for layer in cache.layers:
        layer.keys, layer.values = layer.keys[index], layer.values[index]
    return cache


def trimmed(cache: Any, mask: torch.Tensor) -> tuple[Any, torch.Tensor]:
    """Without the leading columns that are padding in every row."""
    lead = int((mask.cumsum(1) == 0).all(0).sum())
    if lead == 0:
        return cache, mask
    for layer in cache.layers:
        layer.keys, layer.values = layer.keys[:, :, lead:], layer.values[:, :, lead:]
    return cache, mask[:, lead:]
