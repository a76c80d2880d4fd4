"""The settings of `grape generate` (torch-free, so that `grape --help` and pipeline checks stay fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.data.layout import Columns
from grape.generation.backend import Sampling
from grape.generation.openai_backend import HTTPSettings


@dataclass
class GenerateSettings:
    models: list[str] = field(default_factory=list)  # --model values: [NAME=][BACKEND:]MODEL[@BASE_URL]
    sampling: Sampling = field(default_factory=Sampling)
    prompt_format: str = "auto"  # auto | paper | few-shot | chat | raw | a .jinja file
    batch_size: int = 16  # hf
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False
    base_url: str | None = None  # openai, when the spec has no @URL
    api_key_env: str = "OPENAI_API_KEY"
    http: HTTPSettings = field(default_factory=HTTPSettings)
    on_error: str = "fail"
    layout: str = "auto"
    columns: Columns = field(default_factory=Columns)
    split: str | None = None
    subset: str | None = None  # a Hub dataset's config name
    revision: str | None = None  # a Hub dataset's branch, tag or commit
