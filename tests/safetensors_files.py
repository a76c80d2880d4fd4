"""Edit a .safetensors file in place, as a user's script might: same size, same inode, other weights."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

_DTYPES = {"F32": np.float32, "F16": np.float16}


def tensor_byte_range(path: Path, name: str) -> tuple[int, int, str]:
    """(first byte, end byte, dtype) of tensor ``name`` in the file, counted from the file's start."""
    with path.open("rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(header_size))
    begin, end = header[name]["data_offsets"]
    return 8 + header_size + begin, 8 + header_size + end, header[name]["dtype"]


def scale_tensor_in_place(path: Path, name: str, factor: float) -> None:
    """Multiply one tensor by ``factor``, rewriting only its bytes (the file keeps its size and inode)."""
    begin, end, dtype = tensor_byte_range(path, name)
    with path.open("r+b") as handle:
        handle.seek(begin)
        values = np.frombuffer(handle.read(end - begin), dtype=_DTYPES[dtype])
        handle.seek(begin)
        handle.write((values * factor).astype(values.dtype).tobytes())


def write_llama_over_64_mb(folder: Path, tokenizer=None) -> Path:
    """A small random Llama (hidden 192, 4 layers, 49152-token untied head) whose one weights file is
    about 85 MB: past the 64 MB over which grape once hashed only three 1 MB samples of a file."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=49152, hidden_size=192, intermediate_size=768, num_hidden_layers=4, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=False, pad_token_id=0,
        bos_token_id=1, eos_token_id=2,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save_pretrained(folder)
    return folder / "model.safetensors"


def tensor_the_old_samples_missed(path: Path) -> str:
    """A tensor with no byte in the three 1 MB samples (start, middle, end) of the old fingerprint."""
    size, sample = path.stat().st_size, 2**20
    samples = [(0, sample), (size // 2, size // 2 + sample), (size - sample, size)]
    with path.open("rb") as handle:
        (header_size,) = struct.unpack("<Q", handle.read(8))
        names = [name for name in json.loads(handle.read(header_size)) if name != "__metadata__"]
    for name in sorted(names, key=lambda name: ("proj" not in name, name)):  # a weight matrix if one fits
        begin, end, _ = tensor_byte_range(path, name)
        if "layers" in name and all(end <= lo or begin >= hi for lo, hi in samples):
            return name
    raise AssertionError(f"every layer tensor of {path} touches a sample: make the model larger")
