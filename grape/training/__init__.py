"""Fine-tune the target model on a selection (TRL SFTTrainer, completion-only loss, optional LoRA)."""

from grape.training.settings import SFTSettings
from grape.training.train import SFTResult, sft

__all__ = ["SFTResult", "SFTSettings", "sft"]
