"""TRL's `DPOConfig` (``--loss dpo``) or experimental `CPOConfig` (``--loss simpo``) from grape's settings, with any
other of its fields passed through (``trainer:``), as `sft_config` does for SFTConfig.

Each grape setting sets one or two config fields (`OWNED`); those are refused in ``trainer:``. The reference
log-probs are always grape's own reference pass (`reference_pass`), handed to DPOTrainer as precomputed
(``precompute_ref_log_probs=True``); nothing is ever cut (``max_length`` is checked before training).
"""

from __future__ import annotations

import dataclasses
from functools import cache
from pathlib import Path
from typing import Any

from grape.errors import GrapeError
from grape.training.sft_config import OWNED as SFT_OWNED
from grape.training.sft_config import check_config_args, loop_args

_SFT_ONLY = ("padding_free", "completion_only_loss")
OWNED = {
    **{key: value for key, value in SFT_OWNED.items() if key not in _SFT_ONLY},
    "max_length": "max_length (--max_length; grape never cuts a pair)",
    "beta": "beta (--beta)",
    "loss_type": "loss (--loss)",
    "precompute_ref_log_probs": "the reference pass (grape's scoring engine, always precomputed)",
    "padding_free": "the trainer (TRL's DPOTrainer pads; its padding-free mode is disabled in TRL 1.16)",
    "simpo_gamma": "gamma (--gamma)",
    "cpo_alpha": "cpo_alpha",
    "remove_unused_columns": "the trainer (the pre-tokenised columns are all used)",
}


@cache
def config_class(loss: str) -> type:
    """The TRL config class of a preference loss: DPOConfig, or CPOConfig for SimPO (trl.experimental in 1.16)."""
    if loss == "simpo":
        from trl.experimental.cpo import CPOConfig

        return CPOConfig
    from trl import DPOConfig

    return DPOConfig


def check_preference_trainer_args(loss: str, trainer: dict[str, Any]) -> None:
    """One line for the first key of ``trainer`` that is no field of the loss's config, or that grape sets."""
    cls = config_class(loss)
    known = frozenset(f.name for f in dataclasses.fields(cls) if f.init)
    check_config_args(trainer, known, OWNED, f"{cls.__module__.split('.')[0]}.{cls.__name__}")


def preference_config(settings: Any, device: Any, folder: Path, save: bool) -> Any:
    """The DPOConfig or CPOConfig of a run of resolved ``settings`` (grape.training.settings.DPOSettings)."""
    check_preference_trainer_args(settings.loss, settings.trainer)
    args = loop_args(settings, device) | dict(
        output_dir=str(folder),
        save_strategy="steps" if save else "no",
        save_steps=settings.save_steps,
        save_total_limit=settings.save_total_limit,
        beta=settings.beta,
    )
    if settings.loss == "simpo":
        args.update(loss_type="simpo", simpo_gamma=settings.gamma, cpo_alpha=settings.cpo_alpha,
                    max_length=settings.max_length, remove_unused_columns=False)  # fmt: skip
    else:
        args.update(loss_type=["sigmoid"], precompute_ref_log_probs=True, max_length=None, padding_free=False)
    args.update(settings.trainer)
    cls = config_class(settings.loss)
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise GrapeError(f"trainer: {cls.__name__} refused the settings: {str(exc).splitlines()[0]}") from exc
