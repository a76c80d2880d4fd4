"""The loss_weights column laid out like TRL's collator lays out the ids, and read back aligned with the
fused LM head's log-probs (which sit at labels[:, 1:])."""

from __future__ import annotations

import torch
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from grape.training.collator import TokenWeightCollator, loss_positions

EXAMPLES = [
    {"input_ids": [11, 12, 13], "labels": [-100, 12, 13], "loss_weights": [0.0, 1.0, 2.0]},
    {"input_ids": [14, 15], "labels": [-100, 15], "loss_weights": [0.0, 3.0]},
]


def test_padding_free_weights_follow_the_concatenated_row():
    batch = TokenWeightCollator(DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True))(EXAMPLES)
    assert batch["input_ids"].tolist() == [[11, 12, 13, 14, 15]]
    assert batch["loss_weights"].tolist() == [[0.0, 1.0, 2.0, 0.0, 3.0]]
    weights, sequence = loss_positions(batch)
    # Position j predicts token j + 1: 12, 13, 14 (a sequence start, masked by TRL), 15.
    assert weights.tolist() == [1.0, 2.0, 0.0, 3.0]
    assert sequence.tolist() == [0, 0, 1, 1]
    assert "loss_weights" not in DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
        [{k: v for k, v in e.items() if k != "loss_weights"} for e in EXAMPLES]
    )  # the inner collator never sees the column


def test_padded_weights_are_right_padded_with_zeros_to_the_ids_width():
    inner = DataCollatorForLanguageModeling(pad_token_id=0, pad_to_multiple_of=4)
    batch = TokenWeightCollator(inner)(EXAMPLES)
    assert batch["input_ids"].tolist() == [[11, 12, 13, 0], [14, 15, 0, 0]]
    assert batch["loss_weights"].tolist() == [[0.0, 1.0, 2.0, 0.0], [0.0, 3.0, 0.0, 0.0]]
    weights, sequence = loss_positions(batch)
    assert weights.tolist() == [1.0, 2.0, 0.0, 3.0, 0.0, 0.0]
    assert sequence.tolist() == [0, 0, 0, 1, 1, 1]


def test_a_weight_on_a_masked_label_never_reaches_the_loss():
    batch = TokenWeightCollator(DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True))(
        [{"input_ids": [1, 2, 3], "labels": [-100, -100, 3], "loss_weights": [5.0, 5.0, 1.0]}]
    )
    weights, _ = loss_positions(batch)
    assert weights.tolist() == [0.0, 1.0]
    assert torch.equal(batch["labels"][0, 1:] != -100, weights > 0)
