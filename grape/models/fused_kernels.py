"""Fused GPU kernels for the elementwise work between a transformer's matmuls: Liger's Triton kernels.

In an eager forward pass of a Llama-shaped model each RMSNorm is about six passes over [tokens, hidden] (a cast
to float32, a square, a mean, a scale, a cast back, the weight), SwiGLU three over [tokens, intermediate], the
rotary embedding about five over the queries and keys. On an 8B target on a GPU these passes took a quarter of
the scorer's time (docs/performance.md). Liger's kernels (`pip install 'grape-fit[liger]'`) do each in one pass,
with the same casts as the model's own code.

`fused_kernels(model)` swaps them in for the duration of a block and puts the model's own code back after:
outside the block the model is unchanged, so a baseline in the same process (and any other user of the model)
runs the original. Modules of a kind not in the tables below keep their own code; the block yields how many
were swapped.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import MethodType
from typing import Any

from grape.errors import GrapeError

# RMSNorm classes -> (Liger's casting mode, weight offset). Llama's family casts back to the input dtype before
# the weight (`weight * x.to(dtype)`); Gemma 3 multiplies by (1 + weight) in float32, then casts.
NORMS = {
    "LlamaRMSNorm": ("llama", 0.0),
    "MistralRMSNorm": ("llama", 0.0),
    "Qwen2RMSNorm": ("llama", 0.0),
    "Qwen3RMSNorm": ("llama", 0.0),
    "Gemma3RMSNorm": ("gemma", 1.0),
}
# Gated MLP classes (down(act(gate(x)) * up(x))) and the activations Liger fuses with the product.
MLPS = {"LlamaMLP", "MistralMLP", "Qwen2MLP", "Qwen3MLP", "Gemma3MLP"}
GATED_ACTIVATIONS = {"silu": "silu", "swish": "silu", "gelu_pytorch_tanh": "gelu_tanh"}
# Modeling modules whose attention calls the module-level `apply_rotary_pos_emb(q, k, cos, sin)`.
ROPE_MODULES = {
    "transformers.models.llama.modeling_llama",
    "transformers.models.mistral.modeling_mistral",
    "transformers.models.qwen2.modeling_qwen2",
    "transformers.models.qwen3.modeling_qwen3",
    "transformers.models.gemma3.modeling_gemma3",
}
KERNEL_KINDS = ("auto", "liger", "torch")
# Liger 0.8.5 looks for every op's optional backends (NVIDIA's CuTe DSL, Huawei's Ascend NPUs) and logs a warning
# for each one whose extra is missing, advice to install it included; its Triton kernels, grape's, load all the same.
LIGER_REGISTRY_LOGGER = "liger_kernel.backends.registry"
OPTIONAL_LIGER_BACKENDS = ("liger_kernel.ops.backends._cutedsl.", "liger_kernel.ops.backends._ascend.")


def liger_installed() -> bool:
    return importlib.util.find_spec("liger_kernel") is not None


def resolve_kernels(kind: str, device_type: str, compiled: bool) -> str:
    """``auto``: Liger's kernels on a GPU where they are installed and the model is not compiled (Inductor
    fuses the same passes itself), else the model's own code. An explicit ``liger`` that cannot run is an error."""
    if kind not in KERNEL_KINDS:
        raise GrapeError(f"kernels must be one of {', '.join(KERNEL_KINDS)}, not {kind!r}")
    if kind == "auto":
        return "liger" if device_type == "cuda" and not compiled and liger_installed() else "torch"
    if kind == "liger":
        if compiled:
            raise GrapeError("--kernels liger and --compile: Inductor fuses the same passes itself; choose one")
        if device_type != "cuda":
            raise GrapeError("--kernels liger runs Triton kernels on a CUDA GPU; on a CPU use --kernels torch")
        if not liger_installed():
            raise GrapeError("--kernels liger needs Liger's kernels: pip install 'grape-fit[liger]'")
    return kind


@contextmanager
def fused_kernels(model: Any, kernels: dict[str, Callable] | None = None) -> Iterator[int]:
    """Within the block, ``model``'s RMSNorms, gated MLPs and rotary embeddings run fused kernels (Liger's unless
    ``kernels`` gives others: ``rms_norm(x, weight, eps, offset, casting)``, ``silu_mul(a, b)``,
    ``gelu_tanh_mul(a, b)``, ``rope(q, k, cos, sin)``). Yields the number of modules swapped."""
    kernels = kernels or liger_kernels()
    swapped = []
    for module in model.modules():
        forward = _fused_forward(module, kernels)
        if forward is not None:
            module.forward = forward  # an instance attribute: nn.Module.__call__ finds it before the class's
            swapped.append(module)
    ropes = {}
    for name in ROPE_MODULES & {type(m).__module__ for m in swapped}:
        modeling = sys.modules[name]
        ropes[name] = modeling.apply_rotary_pos_emb
        modeling.apply_rotary_pos_emb = kernels["rope"]
    try:
        yield len(swapped)
    finally:
        for module in swapped:
            del module.forward
        for name, original in ropes.items():
            sys.modules[name].apply_rotary_pos_emb = original


def _fused_forward(module: Any, kernels: dict[str, Callable]) -> Callable | None:
    kind = type(module).__name__
    if kind in NORMS:
        casting, offset = NORMS[kind]
        eps = getattr(module, "variance_epsilon", getattr(module, "eps", None))
        if eps is None or getattr(module, "weight", None) is None:
            return None
        return MethodType(lambda self, x: kernels["rms_norm"](x, self.weight, eps, offset, casting), module)
    if kind in MLPS:
        config = module.config  # Gemma names its activation hidden_activation, the others hidden_act
        activation = GATED_ACTIVATIONS.get(
            getattr(config, "hidden_activation", None) or getattr(config, "hidden_act", None)
        )
        if activation is None or not all(hasattr(module, p) for p in ("gate_proj", "up_proj", "down_proj")):
            return None
        fused = kernels[f"{activation}_mul"]
        return MethodType(lambda self, x: self.down_proj(fused(self.gate_proj(x), self.up_proj(x))), module)
    return None


class OptionalBackendsNotMissed(logging.Filter):
    """Drops Liger's warning that an optional backend (`OPTIONAL_LIGER_BACKENDS`) could not be imported; any other
    record of its registry's logger, a failed Triton backend's too, passes."""

    def filter(self, record: logging.LogRecord) -> bool:
        path = record.args[0] if isinstance(record.args, tuple) and record.args else None
        return not (isinstance(path, str) and path.startswith(OPTIONAL_LIGER_BACKENDS))


def quiet_optional_liger_backends() -> None:
    """Puts `OptionalBackendsNotMissed` on Liger's registry logger, once."""
    logger = logging.getLogger(LIGER_REGISTRY_LOGGER)
    if not any(isinstance(f, OptionalBackendsNotMissed) for f in logger.filters):
        logger.addFilter(OptionalBackendsNotMissed())


@functools.cache
def liger_kernels() -> dict[str, Callable]:
    """Liger's kernels under the names `fused_kernels` uses (imported on first use: Triton loads with them)."""
    quiet_optional_liger_backends()
    try:
        from liger_kernel.ops import LigerGELUMulFunction, LigerRMSNormFunction, LigerSiLUMulFunction
        from liger_kernel.transformers.rope import liger_rotary_pos_emb
    except ImportError as exc:
        raise GrapeError(f"Liger's kernels could not be imported ({exc}): pip install 'grape-fit[liger]'") from exc
    return {
        "rms_norm": lambda x, weight, eps, offset, casting: LigerRMSNormFunction.apply(
            x, weight, eps, offset, casting, False
        ),
        "silu_mul": lambda a, b: LigerSiLUMulFunction.apply(a, b),
        "gelu_tanh_mul": lambda a, b: LigerGELUMulFunction.apply(a, b),
        "rope": lambda q, k, cos, sin, unsqueeze_dim=1: liger_rotary_pos_emb(q, k, cos, sin, None, unsqueeze_dim),
    }
