"""The settings of `grape generate` (torch-free, so that `grape --help` and pipeline checks stay fast).

``prompt_format`` is what ``--template`` (alias ``--prompt-format``) sets: the template of every generator
that has none of its own. It keeps a name of its own in YAML because a pipeline's ``template`` is the
target's one text format, given by ``defaults`` to every step that has the setting and checked to agree
along the data path (score, sft, eval); generators are other models, each prompted in its own format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grape.data.layout import Columns
from grape.generation.backend import Sampling
from grape.generation.openai_backend import HTTPSettings


@dataclass
class GenerateSettings:
    # --model values: "[NAME=][BACKEND:]MODEL[@BASE_URL]", or {name, model, template, sampling} (backend.py)
    models: list[str | dict[str, Any]] = field(default_factory=list)
    sampling: Sampling = field(default_factory=Sampling)  # shared; a generator's own `sampling` goes on top
    prompt_format: str = "auto"  # --template: auto | paper | few-shot | chat | raw | a .jinja file
    reference_field: str | None = None  # add this field of each row (e.g. answer) as a candidate, source `reference`
    limit: int | None = None  # generate for the first N input rows only
    batch_size: int = 16  # hf
    batching: str = "auto"  # hf, greedy generators: auto | static | continuous (backend.BATCHING)
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
