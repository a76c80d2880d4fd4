"""One fingerprint of a model for every cache in grape: the files behind a model spec, or a model in memory.

The scoring stage keys its saved parts by it and the pipeline keys its stages by it, so a score
computed with other weights is never reused.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from grape.models.embedded import EMBEDDED
from grape.models.load import LoadedModel, resolve_model_dir

_WHOLE_FILE_BYTES = 64 * 2**20  # files up to this size are hashed whole (configs, tokenizers)
_SAMPLE_BYTES = 2**20  # larger ones (weights) by three samples: start, middle and end


def model_fingerprint(spec: str) -> str:
    """A fingerprint of the model files behind ``spec``, from their content (not their dates or place).

    Weights are sampled, not read whole, so that an 8B model is fingerprinted in milliseconds; a
    fine-tuned checkpoint of the same shape still differs in every sample. A GGUF file is fingerprinted
    as it is: converting it here (on a Ray driver that never loads the model) would cost minutes.
    """
    path = Path(spec).expanduser()
    gguf = EMBEDDED[spec].gguf_path() if spec in EMBEDDED else path if path.suffix == ".gguf" else None
    if gguf is not None and gguf.is_file():
        return f"gguf:{_digest(_file_line(gguf).encode())[:24]}"
    target, identity = resolve_model_dir(spec)  # raises the loader's own message for a bad spec
    if identity["kind"] == "hub":
        return f"hub:{spec}"  # transformers resolves it from its own cache; the id is all we know
    files = sorted(p for p in Path(target).iterdir() if p.is_file() and not p.name.startswith("."))
    return f"files:{_digest(''.join(_file_line(f) for f in files).encode())[:24]}"


def loaded_fingerprint(loaded: LoadedModel) -> str:
    """A fingerprint of a model already in memory: its config and a strided sample of every tensor."""
    import torch  # here, so that the pipeline can fingerprint model files without importing torch

    digest = hashlib.sha256(loaded.model.config.to_json_string().encode())
    for name, tensor in sorted(loaded.model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 64)][:64].to("cpu", torch.float64).numpy()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode() + sample.tobytes())
    vocab = loaded.tokenizer.get_vocab()
    digest.update(json.dumps([len(vocab), loaded.tokenizer.eos_token_id, loaded.tokenizer.bos_token_id]).encode())
    return f"memory:{digest.hexdigest()[:24]}"


def _file_line(path: Path) -> str:
    return f"{path.name}|{path.stat().st_size}|{_file_digest(path)}\n"


def _file_digest(path: Path) -> str:
    size = path.stat().st_size
    with path.open("rb") as handle:
        if size <= _WHOLE_FILE_BYTES:
            return _digest(handle.read())
        samples = []
        for start in (0, size // 2, size - _SAMPLE_BYTES):
            handle.seek(start)
            samples.append(handle.read(_SAMPLE_BYTES))
    return _digest(b"".join(samples))


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
