"""Settings of the score stage and of its engine: plain dataclasses, importable without torch
(so that `grape --help` and the CLI's option defaults stay fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.data.layout import Columns
from grape.models.embedded import DEFAULT_TARGET


@dataclass
class EngineSettings:
    batch_tokens: int = 8192  # tokens per forward pass (rows x longest row)
    max_row_tokens: int = 1024  # longest packed row; longer groups are split (the prompt repeated)
    logits_budget_bytes: int = 256 * 2**20  # memory for one chunk of LM-head logits


@dataclass
class ScoreSettings:
    model: str = DEFAULT_TARGET
    template: str = "paper"  # paper | chat | raw | path to a .jinja file
    eos: bool = True
    dtype: str = "auto"
    device: str = "auto"
    on_error: str = "fail"
    layout: str = "auto"
    columns: Columns = field(default_factory=Columns)
    split: str | None = None
    engine: EngineSettings = field(default_factory=EngineSettings)
    trust_remote_code: bool = False
    part_size: int = 256  # instructions per saved part: a killed run loses at most one part per worker
