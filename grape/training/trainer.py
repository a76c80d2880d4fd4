"""The loss hook: TRL's SFTTrainer with the objective chosen from `objectives.OBJECTIVES`.

``nll`` is TRL's own path, untouched (same collator, same dataset, same ``compute_loss``). Any other
objective runs the model with TRL's fused LM head (``fused_lm_head=True``: per-token log-probs aligned with
``labels[:, 1:]``, never the [tokens, vocab] logits) and applies a loss function of `losses.py`; a weighted
objective reads the ``loss_weights`` column that `TokenWeightCollator` lays out beside the ids; ``ift``
feeds the model IFT's mixed input embeddings (`ift.py`, a first pass without gradient for the model's own
predictions) and applies ``ift_nll``.

Gradient accumulation and several processes: a hooked loss is a mean over *units* (Σ w for
``weights_per="token"``, sequences of positive weight for ``"sequence"``, sequences with a response token
for ``ift``). Before the micro-batches of an
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
from grape.training.ift import frozen_input_embeddings, temporal_residual_inputs
from grape.training.losses import ift_nll, sequence_weighted_nll, token_weighted_nll, weighted_units
from grape.training.objectives import Objective


class ObjectiveSFTTrainer(SFTTrainer):
    def __init__(
        self, *args: Any, objective: Objective, ift_lambda: float = 0.2, ift_gamma: float = 0.95, **kwargs: Any
    ):
        self.objective, self.ift_lambda, self.ift_gamma = objective, ift_lambda, ift_gamma
        self._step_units: torch.Tensor | None = None  # the units of the optimizer step being run
        if objective.mean_over:  # the loss below is already a share of the step's: Trainer must not divide it again
            self.loss_is_scaled_for_ga = True
        super().__init__(*args, **kwargs)
        if objective.mean_over and self.aux_loss_enabled:
            raise GrapeError(f"--loss {objective.name} does not add a mixture-of-experts router loss yet")
        if objective.weighted:  # TRL refuses a custom collator with padding_free, so its own one is wrapped once built.
            self.data_collator = TokenWeightCollator(self.data_collator)
        # IFT's E: the input embeddings as they are before the first step (a resumed run starts from the same)
        self.frozen_embeddings = frozen_input_embeddings(self.model) if objective.temporal_residual else None

    def _set_signature_columns_if_needed(self) -> None:
        # Trainer drops dataset columns the model's forward does not name; the weights must reach the collator.
        super()._set_signature_columns_if_needed()
        if self.objective.weighted and WEIGHTS not in self._signature_columns:
            self._signature_columns = [*self._signature_columns, WEIGHTS]

    def get_batch_samples(self, epoch_iterator, num_batches, device):
        batch_samples, num_items_in_batch = super().get_batch_samples(epoch_iterator, num_batches, device)
        if self.objective.mean_over:
            units = sum(
                (weighted_units(*self._positions(batch), self.objective.mean_over) for batch in batch_samples),
                torch.tensor(0.0),
            ).to(device)
            if self.args.average_tokens_across_devices and self.args.world_size > 1:
                units = self.accelerator.gather(units[None]).sum()
            self._step_units = units
        return batch_samples, num_items_in_batch

    def _positions(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """(weights, sequence) of each scored position (`loss_positions`); unweighted objectives weigh 1."""
        if self.objective.weighted:
            return loss_positions(batch)
        return loss_positions({**batch, WEIGHTS: torch.ones(batch["labels"].shape, device=batch["labels"].device)})

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not self.objective.mean_over:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        weights, sequence = self._positions(inputs)
        model_inputs = {k: v for k, v in inputs.items() if k != WEIGHTS}
        forward_inputs = model_inputs
        if self.objective.temporal_residual:
            self.frozen_embeddings.to(model_inputs["input_ids"].device)
            unwrapped = self.accelerator.unwrap_model(model)
            forward_inputs = temporal_residual_inputs(unwrapped, self.frozen_embeddings, model_inputs, self.ift_lambda)
        outputs = model(**forward_inputs, use_cache=False, fused_lm_head=True)
        logprobs = outputs.log_probs.reshape(-1)  # zero where the label is -100, as are the weights
        if self.objective.temporal_residual:
            loss = ift_nll(logprobs, weights > 0, sequence, self.ift_gamma)
        elif self.objective.weights_per == "token":
            loss = token_weighted_nll(logprobs, weights)
        else:
            loss = sequence_weighted_nll(logprobs, weights, sequence)
        if model.training and self._step_units is not None:
            units = weighted_units(weights, sequence, self.objective.mean_over)
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
