"""The loss hook: TRL's SFTTrainer with the objective chosen from `objectives.OBJECTIVES`.

``nll`` is TRL's own path, untouched (same collator, same dataset, same ``compute_loss``). Any other
objective runs the model with TRL's fused LM head (``fused_lm_head=True``: per-token log-probs aligned with
``labels[:, 1:]``, never the [tokens, vocab] logits) and applies a loss function of `losses.py`; a weighted
objective reads the ``loss_weights`` column that `TokenWeightCollator` lays out beside the ids.

Gradient accumulation and several processes: a weighted loss is a mean over *units* (Σ w for
``weights_per="token"``, sequences of positive weight for ``"sequence"``). Before the micro-batches of an
optimizer step run, `get_batch_samples` counts the units of the whole step (summed over processes when
``average_tokens_across_devices``, transformers' default); each micro-batch then contributes
``mean × its units / the step's units`` (× the number of processes, since DDP averages gradients). So the
step's loss is exactly the mean over all its units, whatever the split into micro-batches or processes,
as TRL's own token-mean NLL is with ``num_items_in_batch``; with all weights 1, ``weighted-token`` equals
``nll``. Outside training (no step counted) the loss is the micro-batch mean.
"""

from __future__ import annotations

from typing import Any

import torch
from trl import SFTTrainer

from grape.errors import GrapeError
from grape.training.collator import WEIGHTS, TokenWeightCollator, loss_positions
from grape.training.losses import sequence_weighted_nll, token_weighted_nll, weighted_units
from grape.training.objectives import Objective


class ObjectiveSFTTrainer(SFTTrainer):
    def __init__(self, *args: Any, objective: Objective, **kwargs: Any):
        self.objective = objective
        self._step_units: torch.Tensor | None = None  # the units of the optimizer step being run
        if objective.weighted:  # the loss below is already a share of the step's: Trainer must not divide it again
            self.loss_is_scaled_for_ga = True
        super().__init__(*args, **kwargs)
        if objective.weighted:
            if self.aux_loss_enabled:
                raise GrapeError(f"--loss {objective.name} does not add a mixture-of-experts router loss yet")
            # TRL refuses a custom collator with padding_free, so its own one is wrapped once built.
            self.data_collator = TokenWeightCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        # Trainer drops dataset columns the model's forward does not name; the weights must reach the collator.
        super()._set_signature_columns_if_needed()
        if self.objective.weighted and WEIGHTS not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, WEIGHTS]

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        if self.objective.weighted:
            units = sum(
                (weighted_units(*loss_positions(batch), self.objective.weights_per) for batch in batch_samples),
                torch.tensor(0.0),
            ).to(device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                units = self.accelerator.gather(units[None]).sum()
            self._step_units = units
        return batch_samples, num_items_in_batch

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.objective.weighted:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        weights, sequence = loss_positions(inputs)
        model_inputs = {k: v for k, v in inputs.items() if k != WEIGHTS}
        outputs = model(**model_inputs, use_cache=False, fused_lm_head=True)
        logprobs = outputs.log_probs.reshape(-1)  # zero where the label is -100, as are the weights
        if self.objective.weights_per == "token":
            loss = token_weighted_nll(logprobs, weights)
        else:
            loss = sequence_weighted_nll(logprobs, weights, sequence)
        if model.training and self._step_units is not None:
            units = weighted_units(weights, sequence, self.objective.weights_per)
            share = units / self._step_units if self._step_units > 0 else torch.zeros_like(units)
            loss = loss * share
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                loss = loss * self.accelerator.num_processes
        self._log_token_metrics(outputs, model_inputs)
        return (loss, outputs) if return_outputs else loss

    def _log_token_metrics(self, outputs: Any, inputs: dict[str, Any]) -> None:
        """The entropy, token accuracy and token count TRL logs on its own path, so that logs compare."""
        mode = "train" if self.model.training else "eval"
        gather = self.accelerator.gather_for_metrics
        valid = gather(outputs.label_mask.sum()).sum()
        entropy, correct = gather(outputs.entropy.detach().sum()).sum(), gather(outputs.is_top1.sum()).sum()
        self._metrics[mode]["entropy"].append((entropy / valid).item() if valid > 0 else 0.0)
        self._metrics[mode]["mean_token_accuracy"].append((correct / valid).item() if valid > 0 else 0.0)
        if mode == "train":
            width = inputs["attention_mask"].sum() if "attention_mask" in inputs else inputs["input_ids"].numel()
            self._total_train_tokens += int(gather(torch.as_tensor(width, device=self.args.device)).sum())
        self._metrics[mode]["num_tokens"] = [self._total_train_tokens]
