"""The LM head for a few rows on a CPU, in the orientation the BLAS runs fast.

A decoding step puts a few rows through the LM head: the search's 3 continuations, a Transfer Q* step's 10
rollouts, an eval batch. ``nn.Linear`` computes ``x @ Wᵀ`` (x [n, H], W [V, H]); on this repository's CPU
(AMD EPYC, MKL through torch 2.13) that product with 2 to 64 rows runs as if it read the weight once per row,
while ``W @ xᵀ``, the same numbers in the other orientation, reads it once. Measured (one process, 8–30
products each, 2026-12-04): Gemma 3's head [262,144 × 640] 102.7 against 30.8 ms for 2 rows, 160.4 against
49.9 for 3, 125.6 against 54.5 for 8, 288.1 against 214.9 for 64, equal for 1; SmolLM2's [49,152 × 576] 30.8
against 7.0 ms for 3 rows. `SmallBatchHead` takes the other orientation for 2–64 rows and leaves every other
product to ``nn.Linear``; its output is the same tensor up to the order of the sums' terms.

`load_model` gives every model it loads onto a CPU this head (the class of its output-embedding layer is
swapped: the weight stays the same parameter, so a tied embedding stays tied, and saving, copying, pickling and
PEFT see an ``nn.Linear``). benchmarks/decode_head.py times whole decoding steps both ways.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

FEW_ROWS = (2, 64)  # the rows for which W @ xᵀ is taken (1 row: the same speed, no copy needed)


class SmallBatchHead(nn.Linear):
    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """[..., H] -> [..., V], as ``nn.Linear``."""
        rows = hidden.reshape(-1, hidden.shape[-1])
        if not FEW_ROWS[0] <= rows.shape[0] <= FEW_ROWS[1] or hidden.device.type != "cpu":
            return F.linear(hidden, self.weight, self.bias)
        out = (self.weight @ rows.T).T.contiguous()
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*hidden.shape[:-1], out.shape[-1])


def use_small_batch_head(model: Any) -> bool:
    """Give ``model``'s output-embedding layer `SmallBatchHead`'s product (when it is a plain ``nn.Linear``)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if type(head) is not nn.Linear:
        return False
    head.__class__ = SmallBatchHead
    return True
