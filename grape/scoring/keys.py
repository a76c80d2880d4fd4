"""The keys that make a scoring run resumable: one for the score-changing settings, one per instruction.

Results are stored under the settings key, so a score computed with another model, template, EOS or
dtype is never reused. Batch and part sizes are not in it: they change rounding only (the engine agrees
with the naive reference within 1e-4 nats whatever the batching). Each instruction's key covers its id
and the texts that are scored, so an input row edited between two runs is scored again.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from grape.data.records import Instruction
from grape.models.embedded import EMBEDDED
from grape.models.load import LoadedModel, resolve_model_dir
from grape.scoring.render import BUILTIN_TEMPLATES

# Bump when the definition of the score changes, so that older parts are not reused.
SCORE_VERSION = 1

_WHOLE_FILE_BYTES = 64 * 2**20  # files up to this size are hashed whole (configs, tokenizers)
_SAMPLE_BYTES = 2**20  # larger ones (weights) by three samples: start, middle and end


def settings_key(model: str, template: str, eos: bool, dtype: str) -> tuple[str, dict[str, Any]]:
    """Return (a 16-hex key, the settings it stands for) for a model fingerprint and render settings."""
    if template not in BUILTIN_TEMPLATES and Path(template).is_file():
        template = f"jinja:{_digest(Path(template).read_bytes())}"
    described = {"score_version": SCORE_VERSION, "model": model, "template": template, "eos": eos, "dtype": dtype}
    return _digest(json.dumps(described, sort_keys=True).encode())[:16], described


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
    digest = hashlib.sha256(loaded.model.config.to_json_string().encode())
    for name, tensor in sorted(loaded.model.state_dict().items()):
        flat = tensor.detach().reshape(-1)
        sample = flat[:: max(1, flat.numel() // 64)][:64].to("cpu", torch.float64).numpy()
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode() + sample.tobytes())
    vocab = loaded.tokenizer.get_vocab()
    digest.update(json.dumps([len(vocab), loaded.tokenizer.eos_token_id, loaded.tokenizer.bos_token_id]).encode())
    return f"memory:{digest.hexdigest()[:24]}"


def instruction_key(inst: Instruction) -> str:
    """A key for one instruction's scoring work: its id, prompt and the candidate texts to score."""
    texts = [[k, c.text] for k, c in enumerate(inst.candidates) if c.skip_reason is None]
    payload = json.dumps([inst.id, inst.prompt, texts], ensure_ascii=False, sort_keys=True)
    return _digest(payload.encode())[:24]


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
