"""The scoring engine: sum of log p(response | prompt) per candidate, for many groups at once.

The things that make it fast (DESIGN.md §4): prefix sharing (packing.py), the LM head applied only to
rows that predict a response token, a log-softmax by vocabulary tiles that never holds [tokens, vocab]
(grape/models/logprobs.py), token-budget batches of similar length (packing.py), on a CPU attention per
prompt and per response instead of over the packed row's square (grape/models/segment_attention.py), on a GPU
optionally by variable-length flash kernels (varlen_attention.py), and host-to-device copies that never wait for
the device (in_flight.py).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass

import numpy as np
import torch

from grape.errors import GrapeError
from grape.models.cpu_heap import kept_heap
from grape.models.fused_kernels import fused_kernels, resolve_kernels
from grape.models.logprobs import chunk_rows_for, head_settings, token_logprobs, vocab_tile_for
from grape.models.segment_attention import packed_attention
from grape.scoring.attention_masks import flex_attention, packed_attention_mask, packed_block_mask
from grape.scoring.in_flight import HostCopy, in_flight, to_device
from grape.scoring.packing import PackedBatch, TokenGroup, build_batch, plan_batches, plan_rows, split_groups
from grape.scoring.settings import EngineSettings
from grape.scoring.varlen_attention import covers, flash_runs, varlen_attention, varlen_layout


@dataclass
class GroupScores:
    sum_logprob: np.ndarray  # [K] float64
    n_tokens: np.ndarray  # [K] int64


class ScoringEngine:
    def __init__(self, model, settings: EngineSettings | None = None):
        self.model = model
        self.decoder = model.base_model  # the transformer without its LM head
        self.head = head_settings(model)
        self.settings = (settings or EngineSettings()).for_device(self.device.type)
        if self.settings.compile:
            # dynamic=True: batch shapes change from batch to batch; one graph serves them all. The first
            # batches pay the compilation (about a minute for an 8B model), the rest run fused kernels.
            self.decoder = torch.compile(self.decoder, dynamic=True)
        # Liger's fused norms / SwiGLU / rotary on a GPU where installed (grape/models/fused_kernels.py)
        self.kernels = resolve_kernels(self.settings.kernels, self.device.type, self.settings.compile)
        self.vocab_tile = self.settings.vocab_tile or vocab_tile_for(self.head["weight"].shape[0], self.device)
        self.chunk_rows = chunk_rows_for(self.vocab_tile, self.settings.logits_budget_bytes)
        self.windows = _attention_windows(model.config)
        self.softcap = getattr(model.config, "attn_logit_softcapping", None)
        # the variable-length calls: FlashAttention's kernel on a GPU (else the mask there), a reference on a CPU
        self.varlen = self.settings.attention == "varlen" and (
            self.device.type != "cuda" or flash_runs("cuda", self.head["weight"].dtype, _head_dim(model.config))
        )
        implementation = getattr(model.config, "_attn_implementation", None)
        if implementation != "sdpa":  # the packed masks are boolean SDPA masks; eager attention would add them
            raise GrapeError(f"the scoring engine needs the model on SDPA attention (grape loads it so), not "
                             f"{implementation!r}: load it with attn_implementation='sdpa'")  # fmt: skip

    @property
    def device(self) -> torch.device:
        return self.head["weight"].device

    def score(
        self, groups: Sequence[TokenGroup], on_batch: Callable[[int, int], None] | None = None
    ) -> list[GroupScores]:
        """Score every response of every group; ``on_batch(candidates, tokens)`` reports progress."""
        results = [GroupScores(np.zeros(len(g.responses)), np.zeros(len(g.responses), np.int64)) for g in groups]
        pieces = split_groups(groups, self.settings.max_row_tokens)
        units = [TokenGroup(groups[g].prompt, [groups[g].responses[k] for k in ks]) for g, ks in pieces]
        lengths = [u.length for u in units]
        # Rows are filled up to the longest piece (not beyond): padding stays small and masked
        # attention, which costs the square of the row length, stays close to what each piece needs.
        rows = plan_rows(lengths, min(self.settings.max_row_tokens, max(lengths, default=1)))
        row_lengths = [sum(lengths[u] for u in row) for row in rows]
        plan = plan_batches(row_lengths, self.settings.batch_tokens)
        batches = ((batch_rows, build_batch(units, [rows[r] for r in batch_rows])) for batch_rows in plan)
        # with two batches in flight a GPU runs one while the host builds and launches the next (in_flight.py)
        launched = in_flight(
            batches, lambda item: HostCopy(self._score_batch(item[1])), self.settings.batches_in_flight
        )
        with kept_heap(self.settings.host_heap == "kept"):  # the batches' large blocks reused, not faulted again
            for (batch_rows, batch), sums in launched:
                counts = np.bincount(batch.candidate_of_token.numpy(), minlength=len(batch.candidates))
                for c, (u, j) in enumerate(batch.candidates):
                    g, k = pieces[u][0], pieces[u][1][j]
                    results[g].sum_logprob[k], results[g].n_tokens[k] = sums[c], counts[c]
                if on_batch:
                    on_batch(len(batch.candidates), int(sum(row_lengths[r] for r in batch_rows)))
        return results

    @torch.inference_mode()
    def _score_batch(self, batch: PackedBatch) -> torch.Tensor:
        device = self.device  # every host tensor is sent first: nothing below waits for the device
        host = (batch.position_ids, batch.input_ids, batch.source_index, batch.target_ids, batch.candidate_of_token)
        position, ids, source, targets, candidate = (to_device(t, device) for t in host)
        with fused_kernels(self.model) if self.kernels == "liger" else nullcontext():
            hidden = self._hidden_states(batch, ids, position)
        rows = hidden.reshape(-1, hidden.shape[-1]).index_select(0, source)
        logprobs = token_logprobs(
            rows,
            targets=targets,
            chunk_rows=self.chunk_rows,
            vocab_tile=self.vocab_tile,
            **self.head,
        )
        sums = torch.zeros(len(batch.candidates), dtype=torch.float64, device=device)
        return sums.index_add_(0, candidate, logprobs.double())

    def _hidden_states(self, batch: PackedBatch, ids: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """The decoder's last hidden states [rows, row length, hidden] for the packed batch."""
        if self.settings.attention == "segments":  # the positions lay out prompts and responses; no mask
            with packed_attention(self.model):
                return self.decoder(input_ids=ids, position_ids=position, use_cache=False).last_hidden_state
        if self.varlen and covers(batch.position_ids, self.windows, self.softcap):
            # two variable-length flash calls a layer (varlen_attention.py); no mask, grouped heads kept
            layout = varlen_layout(batch.segment, batch.branch).attention_kwargs(lambda t: to_device(t, ids.device))
            with varlen_attention(self.model):
                out = self.decoder(input_ids=ids, position_ids=position, use_cache=False, **layout)
            return out.last_hidden_state
        segment, branch = to_device(batch.segment, ids.device), to_device(batch.branch, ids.device)
        flex = self.settings.attention == "flex"  # a BlockMask: masked-out blocks skipped, grouped heads kept
        build = packed_block_mask if flex else packed_attention_mask
        masks = {kind: build(segment, branch, position, w) for kind, w in self.windows.items()}
        mask = masks if len(masks) > 1 else next(iter(masks.values()))
        with flex_attention(self.model) if flex else nullcontext():
            out = self.decoder(input_ids=ids, attention_mask=mask, position_ids=position, use_cache=False)
        return out.last_hidden_state


def _head_dim(config) -> int:
    return getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads


def _attention_windows(config) -> dict[str, int | None]:
    """The attention kinds of the model's layers and their sliding windows (None = full causal)."""
    kinds = set(getattr(config, "layer_types", None) or [])
    window = getattr(config, "sliding_window", None)
    if not kinds:  # older configs: one kind for all layers
        return {"full_attention": window if getattr(config, "use_sliding_window", True) else None}
    unknown = kinds - {"full_attention", "sliding_attention"}
    if unknown:
        raise GrapeError(f"grape's scorer does not support attention layers of kind {sorted(unknown)}")
    return {kind: (window if kind == "sliding_attention" else None) for kind in sorted(kinds)}
