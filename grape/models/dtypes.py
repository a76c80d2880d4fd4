"""The dtype names every command accepts, resolved in one place (torch-free: CLIs and pipeline checks use it).

``auto`` is resolved by `grape.models.load.resolve_dtype`: bfloat16 on a GPU that has it, float32 on a
CPU (docs/performance.md says why). ``fp32``, ``bf16`` and ``fp16`` are accepted as TRL spells them.
"""

from __future__ import annotations

from grape.errors import GrapeError

DTYPES = ("auto", "float32", "bfloat16", "float16")
ALIASES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
ACCEPTED = (*DTYPES, *ALIASES)


def dtype_name(name: str) -> str:
    """The canonical name of a dtype (``bf16`` -> ``bfloat16``); an unknown name is a one-line error."""
    canonical = ALIASES.get(name, name)
    if canonical not in DTYPES:
        raise GrapeError(f"unknown dtype '{name}': use one of {', '.join(DTYPES)}")
    return canonical
