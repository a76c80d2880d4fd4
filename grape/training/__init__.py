"""Fine-tune the target model on a selection (TRL SFTTrainer, completion-only loss, optional LoRA).

`sft` is imported on first use: importing the settings must not load torch (`grape --help` stays fast).
"""

from typing import Any

from grape.training.settings import SFTSettings

__all__ = ["SFTResult", "SFTSettings", "sft"]


def __getattr__(name: str) -> Any:
    if name in ("sft", "SFTResult"):
        from grape.training import train

        return getattr(train, name)
    raise AttributeError(f"module 'grape.training' has no attribute {name!r}")
