"""What `grape sft` keeps of the trained model: the merged model in the dtype it was trained in, the PEFT
adapter, or both (``save: merged | adapter | both``).

The merged model is a plain transformers model (LoRA folded into the base weights: scoring and eval need
no peft), cast to bf16 when trained under bf16 autocast: the fp32 master weights would double the size on
disk (an 8B model: 32 GB instead of 16) for precision the training never used. The adapter is PEFT's own
pair of files (``adapter_model.safetensors``, ``adapter_config.json``) in OUTDIR/adapter, with the
tokenizer, loadable with ``peft.AutoPeftModelForCausalLM.from_pretrained``; PEFT keeps its weights in
fp32 (it upcasts adapters when loading anyway), and they are small.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

ADAPTER = "adapter"


def save_adapter(model: Any, tokenizer: Any, folder: Path) -> Path:
    """Write the PEFT adapter of ``model`` (a peft.PeftModel, before merging) and the tokenizer to ``folder``."""
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def merged_in_training_dtype(model: Any, precision: str) -> Any:
    """The trained model with any LoRA weights merged in, in eval mode, in bf16 when ``precision`` is bf16."""
    import torch

    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    if precision == "bf16":
        merged = merged.to(torch.bfloat16)
    return merged.eval()


def saved_files(save: str) -> tuple[bool, bool]:
    """(write the merged model, write the adapter) for a ``save`` setting."""
    return save in ("merged", "both"), save in ("adapter", "both")
