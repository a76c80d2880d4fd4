"""The settings of `grape eval` (torch-free, so that `grape --help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.data.layout import Columns
from grape.models.embedded import DEFAULT_TARGET


@dataclass
class EvalSettings:
    model: str = DEFAULT_TARGET
    template: str = "paper"  # the template the model was trained with
    verifier: str = "math"
    max_new_tokens: int = 256
    batch_size: int = 16
    stop: list[str] | None = None  # None: "\nQuestion:" with the paper template, nothing otherwise
    limit: int | None = None  # evaluate the first N items only
    decode: str | None = None  # a `grape decode` YAML (method, baseline, reward, ...): answer with it, not greedily
    columns: Columns = field(default_factory=Columns)
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
