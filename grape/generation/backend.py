"""The one interface every generation backend has, and how a ``--model`` value names a generator.

A backend turns requests (a prompt and a sample index) into completions and yields them as they are
done, so that the caller can write each one at once (an interrupted run loses at most one batch).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from grape.data.records import Messages
from grape.errors import GrapeError

BACKENDS = ("hf", "openai", "vllm")


@dataclass
class Sampling:
    """Sampling settings shared by all backends (recorded in the output's sidecar)."""

    n: int = 1  # samples per (prompt, generator)
    temperature: float = 0.7
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0
    stop: list[str] = field(default_factory=list)

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0


@dataclass(frozen=True)
class Request:
    id: str  # the instruction id
    sample: int  # 0 .. n-1
    prompt: str | Messages

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
    """A parsed ``--model`` value: ``[NAME=][BACKEND:]MODEL[@BASE_URL]``.

    Examples: ``smollm2-135m-instruct`` (hf), ``small=hf:./my-model``, ``vllm:Qwen/Qwen2.5-0.5B-Instruct``,
    ``openai:gpt-4o-mini@https://api.openai.com/v1``. The name (the candidates' ``source``) defaults to
    the model's last path component.
    """

    name: str
    backend: str
    model: str
    base_url: str | None = None

    @classmethod
    def parse(cls, spec: str) -> GeneratorSpec:
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


def default_name(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1].removesuffix(".gguf") or model
