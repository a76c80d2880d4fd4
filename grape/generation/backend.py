"""The one interface every generation backend has, and how a ``--model`` value names a generator.

A backend turns requests (a prompt and a sample index) into completions and yields them as they are
done, so that the caller can write each one at once (an interrupted run loses at most one batch).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

from grape.config import settings_from_dict
from grape.data.records import Messages
from grape.errors import GrapeError

BACKENDS = ("hf", "openai", "vllm")
# How the hf backend batches greedy requests: continuous (a finished answer's slot takes the next prompt at once,
# grape.generation.continuous), static (a batch runs to its longest answer), or auto (continuous on a CPU where
# the model's KV cache allows it). Sampled requests always go in static batches, seeded per batch.
BATCHING = ("auto", "static", "continuous")


def check_batching(batching: str) -> str:
    """``batching`` if it is one of BATCHING, else a GrapeError naming the choices."""
    if batching not in BATCHING:
        raise GrapeError(f"batching {batching!r}: use one of {', '.join(BATCHING)}")
    return batching


GENERATOR_KEYS = ("name", "model", "template", "sampling")  # the keys of a generator given as a mapping


@dataclass
class Sampling:
    """Sampling settings shared by all backends (recorded in the output's sidecar)."""

    n: int = 1  # samples per (prompt, generator)
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    stop: list[str] = field(default_factory=list)

    def __post_init__(self):
        """The flags' ranges (grape.cli_options) for every way in: a --config file, a generator's `sampling`
        mapping, a pipeline step, the API (a ValueError becomes a one-line error naming where, grape.config)."""
        for name, value, ok, rule in (
            ("temperature", self.temperature, lambda t: t >= 0, "0 or more (0: greedy)"),
            ("top_p", self.top_p, lambda p: 0 < p <= 1, "above 0 and at most 1"),
        ):
            if isinstance(value, int | float) and not (math.isfinite(value) and ok(value)):
                raise ValueError(f"{name} must be {rule}, not {value:g}")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass(frozen=True)
class Request:
    id: str  # the instruction id
    sample: int  # 0 .. n-1
    prompt: str | Messages
    fields: Mapping[str, Any] | None = field(default=None, compare=False)  # the row's fields, for a Jinja template

    def seed(self, base: int) -> int:
        """A seed of its own, so that a sample does not depend on which others share its batch or run."""
        digest = hashlib.sha256(f"{base}|{self.id}|{self.sample}".encode()).digest()
        return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


@dataclass
class Completion:
    request: Request
    text: str | None  # None when generation failed (then `error` says why)
    n_tokens: int | None = None
    finish_reason: str | None = None
    error: str | None = None


class Backend(Protocol):
    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[Completion]:
        """Yield one completion per request, in any order, as soon as each is done."""
        ...

    def identity(self) -> dict[str, Any]:
        """What generates (model, server, prompt format), for the sidecar."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class GeneratorSpec:
    """A parsed ``--model`` value: a string ``[NAME=][BACKEND:]MODEL[@BASE_URL]``, or a mapping that gives
    the generator its own template and sampling: ``{name: paraphrase, model: smollm2-135m-instruct,
    template: paraphrase.jinja, sampling: {temperature: 0}}`` (``model`` is the string form without NAME).

    Examples: ``smollm2-135m-instruct`` (hf), ``small=hf:./my-model``, ``vllm:Qwen/Qwen2.5-0.5B-Instruct``,
    ``openai:gpt-4o-mini@https://api.openai.com/v1``. The name (the candidates' ``source``) defaults to
    the model's last path component.
    """

    name: str
    backend: str
    model: str
    base_url: str | None = None
    template: str | None = None  # its own template; None: the settings' prompt_format
    sampling: Mapping[str, Any] = field(default_factory=dict)  # its own sampling settings over the shared ones

    def sampling_over(self, shared: Sampling) -> Sampling:
        """The shared sampling settings with this generator's own on top."""
        return settings_from_dict(Sampling, {**asdict(shared), **self.sampling}, f"generator {self.name}: sampling")

    @classmethod
    def parse(cls, spec: str | Mapping[str, Any]) -> GeneratorSpec:
        if isinstance(spec, Mapping):
            return cls._from_mapping(spec)
        if not isinstance(spec, str):
            raise GrapeError(f"--model {spec!r}: expected a string or a mapping of {', '.join(GENERATOR_KEYS)}")
        name, sep, rest = spec.partition("=")
        if not sep or "/" in name or ":" in name:  # '=' inside a path or URL is not a name
            name, rest = "", spec
        backend, sep, model = rest.partition(":")
        if not sep or backend not in BACKENDS:
            backend, model = "hf", rest
        base_url = None
        if backend == "openai":
            model, _, base_url = model.partition("@")
            base_url = base_url or None
        if not model:
            raise GrapeError(f"--model '{spec}': no model named (expected [NAME=][BACKEND:]MODEL[@BASE_URL])")
        return cls(name or default_name(model), backend, model, base_url)

    @classmethod
    def _from_mapping(cls, entry: Mapping[str, Any]) -> GeneratorSpec:
        where = f"generator {dict(entry)}"
        unknown = sorted(set(entry) - set(GENERATOR_KEYS))
        if unknown:
            names = ", ".join(map(str, unknown))
            raise GrapeError(f"{where}: unknown key(s) {names}; a generator has {', '.join(GENERATOR_KEYS)}")
        model, name, template = entry.get("model"), entry.get("name"), entry.get("template")
        if not isinstance(model, str) or not model:
            raise GrapeError(f"{where}: `model` must name a model: [BACKEND:]MODEL[@BASE_URL]")
        for key, value in (("name", name), ("template", template)):
            if value is not None and (not isinstance(value, str) or not value):
                raise GrapeError(f"{where}: `{key}` must be a non-empty string")
        sampling = entry.get("sampling") or {}
        if not isinstance(sampling, Mapping):
            raise GrapeError(f"{where}: `sampling` must be a mapping, e.g. {{temperature: 0}}")
        settings_from_dict(Sampling, dict(sampling), f"{where}: sampling")  # unknown keys and types: one line
        parsed = cls.parse(model)
        return replace(parsed, name=name or parsed.name, template=template, sampling=dict(sampling))


def default_name(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf") or model
