"""The fused-kernel swap: which modules it routes through the kernels, with which arguments, and that the model's
own code comes back after. Liger's Triton kernels need a GPU (tests/scoring/test_engine_cuda.py checks them
against the float32 reference); here the swap is driven by plainly written kernels, so the model's output
within the block must equal its own, and a kernel given a wrong argument shows."""

import logging
import sys
from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from tiny_models import tiny_gemma3, tiny_llama

from grape.errors import GrapeError
from grape.models.fused_kernels import (
    LIGER_REGISTRY_LOGGER,
    fused_kernels,
    quiet_optional_liger_backends,
    resolve_kernels,
)


def reference_kernels(calls: Counter, ignore_offset: bool = False) -> dict:
    def rms_norm(x, weight, eps, offset, casting):
        calls["rms_norm", casting, offset] += 1
        offset = 0.0 if ignore_offset else offset
        normed = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + eps)
        if casting == "llama":
            return (weight + offset) * normed.to(x.dtype)
        return (normed * (offset + weight.float())).to(x.dtype)

    def gated(activation):
        def fused(a, b):
            calls[activation] += 1
            return activation_fn[activation](a) * b

        return fused

    def rope(q, k, cos, sin, unsqueeze_dim=1):
        calls["rope"] += 1
        cos, sin = cos.unsqueeze(unsqueeze_dim), sin.unsqueeze(unsqueeze_dim)
        half = lambda x: torch.cat((-x[..., x.shape[-1] // 2 :], x[..., : x.shape[-1] // 2]), dim=-1)  # noqa: E731
        return q * cos + half(q) * sin, k * cos + half(k) * sin

    activation_fn = {"silu_mul": F.silu, "gelu_tanh_mul": lambda a: F.gelu(a, approximate="tanh")}
    return {"rms_norm": rms_norm, "silu_mul": gated("silu_mul"), "gelu_tanh_mul": gated("gelu_tanh_mul"), "rope": rope}


def perturbed(model):
    """Norm weights away from their initial ones and zeros, so that a wrong offset or cast shows."""
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "norm" in name:
                parameter.add_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model


def logits(model, ids):
    with torch.no_grad():
        return model(input_ids=ids, position_ids=torch.arange(ids.shape[1])[None]).logits


@pytest.mark.parametrize(
    "make, swapped, expected_calls",
    [
        (tiny_llama, 7, {("rms_norm", "llama", 0.0): 5, "silu_mul": 2, "rope": 2}),
        # per layer: input, post-attention, pre- and post-feedforward norms, q_norm, k_norm; and the final norm
        (tiny_gemma3, 3 * 7 + 1, {("rms_norm", "gemma", 1.0): 3 * 6 + 1, "gelu_tanh_mul": 3, "rope": 3}),
    ],
)
def test_swapped_forward_equals_the_models_own(make, swapped, expected_calls):
    model = perturbed(make())
    ids = torch.randint(0, model.config.vocab_size, (2, 21), generator=torch.Generator().manual_seed(5))
    own = logits(model, ids)
    modeling = sys.modules[type(model).__module__]
    rope_before = modeling.apply_rotary_pos_emb
    calls = Counter()
    with fused_kernels(model, reference_kernels(calls)) as count:
        fused = logits(model, ids)
    assert count == swapped
    assert dict(calls) == expected_calls
    torch.testing.assert_close(fused, own, rtol=1e-5, atol=1e-5)
    # the model's own code is back: no instance forwards left, the modeling module's rotary function restored
    assert not any("forward" in vars(module) for module in model.modules())
    assert modeling.apply_rotary_pos_emb is rope_before
    calls.clear()
    torch.testing.assert_close(logits(model, ids), own, rtol=0, atol=0)
    assert not calls


def test_a_wrong_kernel_argument_shows():
    """Gemma 3's norms multiply by (1 + weight): a kernel that drops the offset changes the logits."""
    model = perturbed(tiny_gemma3())
    ids = torch.randint(0, model.config.vocab_size, (1, 17), generator=torch.Generator().manual_seed(6))
    own = logits(model, ids)
    with fused_kernels(model, reference_kernels(Counter(), ignore_offset=True)):
        wrong = logits(model, ids)
    assert (wrong - own).abs().max() > 1e-2


def test_the_model_is_restored_after_an_error():
    model = tiny_llama()
    with pytest.raises(RuntimeError), fused_kernels(model, reference_kernels(Counter())):
        raise RuntimeError("inside")
    assert not any("forward" in vars(module) for module in model.modules())


def test_kernel_choice():
    assert resolve_kernels("auto", "cpu", compiled=False) == "torch"
    assert resolve_kernels("auto", "cuda", compiled=True) == "torch"  # Inductor fuses those passes itself
    assert resolve_kernels("torch", "cuda", compiled=False) == "torch"
    with pytest.raises(GrapeError, match="CUDA GPU"):
        resolve_kernels("liger", "cpu", compiled=False)
    with pytest.raises(GrapeError, match="choose one"):
        resolve_kernels("liger", "cuda", compiled=True)
    with pytest.raises(GrapeError, match="kernels must be one of"):
        resolve_kernels("triton", "cuda", compiled=False)


def test_liger_s_missing_optional_backends_are_not_reported_and_its_other_warnings_are(caplog):
    """Liger 0.8.5 warns, for each op, that its CuTe DSL and Ascend backends could not be imported (their extras are
    optional); its Triton kernels load all the same, so grape drops those two and nothing else."""
    quiet_optional_liger_backends()
    quiet_optional_liger_backends()  # once is enough; twice adds nothing
    logger = logging.getLogger(LIGER_REGISTRY_LOGGER)
    assert len(logger.filters) == 1
    message = "Backend impl '%s' for op '%s' could not be imported: %s: %s"
    with caplog.at_level(logging.WARNING, logger=LIGER_REGISTRY_LOGGER):
        for path in ("liger_kernel.ops.backends._cutedsl.rope", "liger_kernel.ops.backends._ascend.rope",
                     "liger_kernel.ops.backends._triton.rope"):  # fmt: skip
            logger.warning(message, path, "rope", "ImportError", "no module")
        logger.warning("Liger registry: something else")
    reported = [record.getMessage() for record in caplog.records]
    assert len(reported) == 2
    assert "_triton.rope" in reported[0] and reported[1] == "Liger registry: something else"
