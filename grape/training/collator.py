"""A per-token weight column (`loss_weights`) carried through TRL's collator, and read back aligned with the
fused LM head's log-probs.

TRL's `DataCollatorForLanguageModeling` knows nothing of extra columns: it pads (or, padding-free,
concatenates) ``input_ids`` and ``labels`` only. `TokenWeightCollator` lays the weights out exactly as it
lays out the ids: right-padded with 0 to the same width, or concatenated into the one row of a padding-free
batch (where sequences start where ``position_ids == 0``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

WEIGHTS = "loss_weights"


@dataclass
class TokenWeightCollator:
    """Wraps TRL's collator; adds ``loss_weights``: [rows, width] float32, laid out like ``input_ids``."""

    inner: Any  # trl.trainer.sft_trainer.DataCollatorForLanguageModeling

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = [torch.tensor(example[WEIGHTS], dtype=torch.float32) for example in examples]
        batch = self.inner([{k: v for k, v in example.items() if k != WEIGHTS} for example in examples])
        rows = [torch.cat(weights)] if self.inner.padding_free else weights
        width = batch["input_ids"].shape[1]  # pad_to_multiple_of may make it wider than the longest row
        batch[WEIGHTS] = torch.stack([torch.nn.functional.pad(row, (0, width - len(row))) for row in rows])
        return batch


def loss_positions(batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The weight and the sequence of each position the fused LM head scores.

    The fused head returns log_probs [rows, width - 1] aligned with ``labels[:, 1:]``: position j holds
    log p(token j + 1 | tokens ≤ j). The weight of token j + 1 belongs there, zeroed where its label is
    -100 (prompt tokens, padding, and in a padding-free row the first token of each sequence, which TRL
    masks so that no sequence is predicted from the one before it).

    Returns:
        weights: [rows * (width - 1)] float32; sequence: [rows * (width - 1)] int64, the index of the
        sequence each position belongs to (the row when padded; counted from ``position_ids == 0`` when
        padding-free).
    """
    labels = batch["labels"][:, 1:]
    weights = batch[WEIGHTS][:, 1:] * (labels != -100)
    if "attention_mask" not in batch:  # padding-free: one row of concatenated sequences
        sequence = (batch["position_ids"] == 0).long().cumsum(-1)[:, 1:] - 1
    else:
        rows = torch.arange(labels.shape[0], device=labels.device)
        sequence = rows[:, None].expand_as(labels)
    return weights.reshape(-1), sequence.reshape(-1)
