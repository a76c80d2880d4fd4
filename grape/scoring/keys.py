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

from grape.data.records import Instruction
from grape.text import BUILTIN_TEMPLATES

# Bump when the definition of the score changes, so that older parts are not reused.
SCORE_VERSION = 2  # 2: the whole text's tokens at the prompt/response boundary, chat end-of-turn marker


def settings_key(model: str, template: str, eos: bool, dtype: str) -> tuple[str, dict[str, Any]]:
    """Return (a 16-hex key, the settings it stands for) for a model fingerprint and render settings."""
    if template not in BUILTIN_TEMPLATES and Path(template).is_file():
        template = f"jinja:{_digest(Path(template).read_bytes())}"
    described = {"score_version": SCORE_VERSION, "model": model, "template": template, "eos": eos, "dtype": dtype}
    return _digest(json.dumps(described, sort_keys=True).encode())[:16], described


def instruction_key(inst: Instruction) -> str:
    """A key for one instruction's scoring work: its id, prompt and the candidate texts to score."""
    texts = [[k, c.text] for k, c in enumerate(inst.candidates) if c.skip_reason is None]
    payload = json.dumps([inst.id, inst.prompt, texts], ensure_ascii=False, sort_keys=True)
    return _digest(payload.encode())[:24]


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
