"""The Ray actor that scores chunks: loads the model once, then scores one chunk per call.

It is a plain callable class (Ray Data's `map_batches` makes a pool of them) that imports nothing
from Ray, so that it can be read, and tested, without a cluster.
"""

from __future__ import annotations

import json
import time

import pyarrow as pa

from grape.models.load import load_model
from grape.scoring.chunk_scorer import ChunkScorer, WorkItem


class ScoreWorker:
    def __init__(self, settings, threads: int | None = None):
        """``settings``: a `ScoreSettings` whose device and dtype are concrete (the driver decided them)."""
        if threads:  # CPU workers split the node's cores between them
            import torch

            torch.set_num_threads(threads)
        loaded = load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
        self.scorer = ChunkScorer(loaded, settings.template, settings.eos, settings.engine)

    def __call__(self, batch: pa.Table) -> pa.Table:
        """``batch``: rows of (chunk index, JSON list of work items). Returns their outcomes, tagged with
        the chunk, the tokens the engine processed for it and the seconds it took."""
        tables = []
        for chunk, work in zip(batch.column("chunk").to_pylist(), batch.column("work").to_pylist(), strict=True):
            items = [WorkItem.from_dict(item) for item in json.loads(work)]
            tokens, started = 0, time.perf_counter()

            def count(_candidates: int, n_tokens: int) -> None:
                nonlocal tokens
                tokens += n_tokens

            table = self.scorer.score(items, on_batch=count)
            n, seconds = table.num_rows, time.perf_counter() - started
            table = table.append_column("chunk", pa.array([chunk] * n, pa.int64()))
            table = table.append_column("chunk_tokens", pa.array([tokens] * n, pa.int64()))
            tables.append(table.append_column("chunk_seconds", pa.array([seconds] * n, pa.float64())))
        return pa.concat_tables(tables)
