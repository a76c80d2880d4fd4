"""TRL's preference trainers, fed the ids grape renders: DPO (`DPOTrainer`) and SimPO (the experimental
`CPOTrainer` with ``loss_type="simpo"``), as TRL 1.16 has them (tests/training/test_dpo_trl.py pins what is used).

Neither trainer takes a pre-tokenised dataset in TRL 1.16: DPOTrainer's ``_prepare_dataset`` always tokenises
``prompt`` and ``prompt + chosen`` apart (and appends EOS to the text), CPOTrainer's ``tokenize_row`` tokenises the
prompt alone. Each subclass below overrides exactly that step to take grape's ids as they are; everything after it
(the forward, the loss, the metrics, checkpoints) is TRL's own. DPOTrainer's reference pass
(``_precompute_ref_logps``) is replaced too: the dataset already carries ``ref_chosen_logps`` and
``ref_rejected_logps`` from grape's scoring engine (`reference_pass`).

Where a response's own prompt is longer than the shared one (`PreferencePair.chosen_prompt_tail`), those tokens
carry no loss: DPO's collator is TRL's, with them taken out of its ``completion_mask``; SimPO's labels are -100
there, as on the rest of the prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from datasets import Dataset
from trl import DPOTrainer
from trl.experimental.cpo import CPOTrainer
from trl.trainer.dpo_trainer import DataCollatorForPreference

from grape.training.preference import PreferencePair

DPO_COLUMNS = ("prompt_ids", "chosen_ids", "rejected_ids", "ref_chosen_logps", "ref_rejected_logps",
               "chosen_prompt_tail", "rejected_prompt_tail")  # fmt: skip
# CPOTrainer.tokenize_row's output for a decoder-only model: the whole sequences, their masks, and labels that are
# -100 on the prompt.
SIMPO_COLUMNS = ("prompt_input_ids", "prompt_attention_mask", "chosen_input_ids", "chosen_attention_mask",
                 "chosen_labels", "rejected_input_ids", "rejected_attention_mask", "rejected_labels")  # fmt: skip


def dpo_dataset(pairs: list[PreferencePair], ref_chosen: list[float], ref_rejected: list[float]) -> Dataset:
    """DPOTrainer's tokenised columns (what its ``_prepare_dataset`` would make) plus the reference log-probs."""
    return Dataset.from_dict({
        "prompt_ids": [p.prompt_ids for p in pairs], "chosen_ids": [p.chosen_ids for p in pairs],
        "rejected_ids": [p.rejected_ids for p in pairs], "ref_chosen_logps": ref_chosen,
        "ref_rejected_logps": ref_rejected, "chosen_prompt_tail": [p.chosen_prompt_tail for p in pairs],
        "rejected_prompt_tail": [p.rejected_prompt_tail for p in pairs],
    })  # fmt: skip


def simpo_dataset(pairs: list[PreferencePair]) -> Dataset:
    """CPOTrainer's tokenised columns (what its ``tokenize_row`` would make)."""
    columns: dict[str, list[Any]] = {name: [] for name in SIMPO_COLUMNS}
    for p in pairs:
        columns["prompt_input_ids"].append(p.prompt_ids)
        columns["prompt_attention_mask"].append([1] * len(p.prompt_ids))
        for name, ids in (("chosen", p.chosen_ids), ("rejected", p.rejected_ids)):
            scored = p.scored(name)
            columns[f"{name}_input_ids"].append(p.prompt_ids + ids)
            columns[f"{name}_attention_mask"].append([1] * (len(p.prompt_ids) + len(ids)))
            columns[f"{name}_labels"].append([-100] * (len(p.prompt_ids) + len(ids) - len(scored)) + scored)
    return Dataset.from_dict(columns)


@dataclass
class RenderedPreferenceCollator(DataCollatorForPreference):
    """TRL's preference collator, with each response's prompt tail (`PreferencePair`) out of ``completion_mask``."""

    def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        batch = super().torch_call(examples)
        mask, n = batch["completion_mask"], len(examples)
        for i, example in enumerate(examples):
            start = len(example["prompt_ids"])
            mask[i, start : start + example["chosen_prompt_tail"]] = 0
            mask[n + i, start : start + example["rejected_prompt_tail"]] = 0
        return batch


class RenderedDPOTrainer(DPOTrainer):
    """DPOTrainer on `dpo_dataset` columns: no re-tokenising, no reference pass of its own."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        # TRL builds its collator from its settings (pad token, max_length, ...); the same one, tail-aware.
        inner = self.data_collator
        self.data_collator = RenderedPreferenceCollator(
            pad_token_id=inner.pad_token_id,
            max_length=inner.max_length,
            truncation_mode=inner.truncation_mode,
            pad_to_multiple_of=inner.pad_to_multiple_of,
        )

    def _set_signature_columns_if_needed(self) -> None:
        # Trainer drops the dataset columns it is not told of; the collator needs the tails.
        super()._set_signature_columns_if_needed()
        self._signature_columns = [*self._signature_columns, "chosen_prompt_tail", "rejected_prompt_tail"]

    def _prepare_dataset(self, dataset: Dataset, processing_class: Any, args: Any, dataset_name: str) -> Dataset:
        _require(dataset, DPO_COLUMNS, dataset_name)
        return dataset

    def _precompute_ref_logps(self, dataset: Dataset, name: str, batch_size: int) -> Dataset:
        _require(dataset, DPO_COLUMNS, name)
        return dataset


class RenderedSimPOTrainer(CPOTrainer):
    """CPOTrainer (``loss_type="simpo"``) on `simpo_dataset` columns: rows pass its tokenising step unchanged."""

    def tokenize_row(self, feature: dict[str, Any], model: Any = None) -> dict[str, Any]:
        missing = [name for name in SIMPO_COLUMNS if name not in feature]
        if missing:
            raise ValueError(f"a pre-tokenised SimPO row lacks {', '.join(missing)}")
        return feature


def _require(dataset: Dataset, columns: tuple[str, ...], name: str) -> None:
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise ValueError(f"the {name} dataset is not pre-tokenised by grape: it lacks {', '.join(missing)}")
