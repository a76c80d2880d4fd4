"""The settings of `grape eval` (torch-free, so that `grape --help` stays fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.data.layout import Columns
from grape.models.embedded import DEFAULT_TARGET


@dataclass
class EvalSettings:
    model: str = DEFAULT_TARGET
    template: str | None = None  # None: the template grape trained the model with (its grape-sft.yaml, ...), else paper
    verifier: str = "math"
    max_new_tokens: int = 256
    batch_size: int = 16
    batching: str = "auto"  # greedy answers: auto | static | continuous (grape.generation.backend.BATCHING)
    stop: list[str] | None = None  # None: "\nQuestion:" with the paper template, nothing otherwise
    limit: int | None = None  # evaluate the first N items only
    decode: str | None = None  # a `grape decode` YAML (method, baseline, reward, ...): answer with it, not greedily
    columns: Columns = field(default_factory=Columns)
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False


HARNESSES = ("lm-eval",)  # the evaluation harnesses `grape eval --harness` hands a model to


@dataclass
class HarnessSettings:
    """`grape eval --harness lm-eval`: the model handed to lm-evaluation-harness (grape.evaluation.harness)."""

    model: str = DEFAULT_TARGET  # an OUTDIR of grape sft (merged model, or only its adapter), a directory, Hub id, GGUF
    tasks: list[str] = field(default_factory=list)  # lm-eval task or group names, e.g. [gsm8k]
    num_fewshot: int | None = None  # None: each task's own (gsm8k: 5)
    limit: int | None = None  # the first N items of each task only
    batch_size: str = "auto"  # lm-eval's: a number, auto, or auto:N
    dtype: str = "auto"  # as grape resolves it: bfloat16 on a GPU that has it, float32 on a CPU
    device: str = "auto"
    template: str | None = None  # chat: lm-eval applies the tokenizer's chat template; otherwise the task's own
    # prompts. None: the template grape trained the model with (its grape-sft.yaml, ...), else paper
    include_path: str | None = None  # a folder of further task YAML files
    trust_remote_code: bool = False
