"""The engine on a GPU: same scores as the naive reference, no host round trips per candidate.
Skipped where torch sees no CUDA device (CI has none)."""

from functools import partial

import pytest
import torch
from reference import naive_sum_logprob
from test_engine import random_groups
from tiny_models import tiny_gemma3, tiny_llama

from grape.models.fused_kernels import liger_installed
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.in_flight import HostCopy
from grape.scoring.packing import build_batch
from grape.scoring.varlen_attention import flash_varlen, reference_varlen

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_cuda_engine_matches_cpu_reference():
    cpu = tiny_gemma3(sliding_window=8)
    gpu = tiny_gemma3(sliding_window=8).cuda()
    groups = random_groups(cpu.config.vocab_size, 12, seed=21)
    results = ScoringEngine(gpu, EngineSettings(2048, 512)).score(groups)
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            reference = naive_sum_logprob(cpu, group.prompt, response)
            assert abs(reference - result.sum_logprob[k]) / len(response) < 1e-4


def test_cuda_bfloat16_engine_is_close():
    cpu = tiny_gemma3()
    gpu = tiny_gemma3().cuda().to(torch.bfloat16)
    groups = random_groups(cpu.config.vocab_size, 6, seed=22)
    results = ScoringEngine(gpu, EngineSettings(2048, 512)).score(groups)
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            assert abs(naive_sum_logprob(cpu, group.prompt, response) - result.sum_logprob[k]) / len(response) < 0.05


def test_cuda_engine_untied_head_in_small_chunks():
    """Llama shape (untied head), logits reduced a few rows at a time, long and short groups in one batch."""
    cpu = tiny_llama()
    gpu = tiny_llama().cuda()
    groups = random_groups(cpu.config.vocab_size, 10, seed=23, prompt=(1, 60), response=(1, 50), k=(1, 9))
    settings = EngineSettings(batch_tokens=1024, max_row_tokens=256, logits_budget_bytes=8 * cpu.config.vocab_size * 6)
    results = ScoringEngine(gpu, settings).score(groups)
    for group, result in zip(groups, results, strict=True):
        assert result.n_tokens.tolist() == [len(r) for r in group.responses]
        for k, response in enumerate(group.responses):
            assert abs(naive_sum_logprob(cpu, group.prompt, response) - result.sum_logprob[k]) / len(response) < 1e-4


def test_cuda_compiled_engine_matches_reference():
    cpu = tiny_gemma3(sliding_window=8)
    gpu = tiny_gemma3(sliding_window=8).cuda()
    groups = random_groups(cpu.config.vocab_size, 12, seed=24)
    results = ScoringEngine(gpu, EngineSettings(512, 256, compile=True)).score(groups)
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            assert abs(naive_sum_logprob(cpu, group.prompt, response) - result.sum_logprob[k]) / len(response) < 1e-4


needs_liger = pytest.mark.skipif(not liger_installed(), reason="Liger's kernels are not installed (grape-fit[liger])")


@needs_liger
@pytest.mark.parametrize("make", [tiny_llama, tiny_gemma3])
def test_cuda_engine_with_liger_kernels_matches_cpu_reference(make):
    """Liger's fused RMSNorm / gated MLP / rotary kernels in float32 give the reference's scores (1e-4)."""
    cpu = make()
    gpu = make().cuda()
    groups = random_groups(cpu.config.vocab_size, 10, seed=25, prompt=(1, 60), response=(1, 50), k=(1, 9))
    engine = ScoringEngine(gpu, EngineSettings(1024, 256, kernels="liger"))
    assert engine.kernels == "liger"
    results = engine.score(groups)
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            assert abs(naive_sum_logprob(cpu, group.prompt, response) - result.sum_logprob[k]) / len(response) < 1e-4
    assert not any("forward" in vars(module) for module in gpu.modules())  # the model's own code is back


@pytest.mark.parametrize(
    ("variant", "default"),
    [pytest.param({"kernels": "liger"}, {"kernels": "torch"}, marks=needs_liger, id="liger"),
     pytest.param({"attention": "flex"}, {"attention": "mask"}, id="flex"),
     pytest.param({"attention": "varlen"}, {"attention": "mask"}, id="varlen"),
     pytest.param({"attention": "varlen", "compile": True}, {"attention": "mask"}, id="varlen_compiled")],
)  # fmt: skip
def test_cuda_bfloat16_variant_close_to_the_default_path(variant, default):
    """In bf16 a fused path (Liger's kernels, FlexAttention, FlashAttention's variable-length calls, eager and
    traced into a compiled decoder) stays within 0.02 nats/token of the plain one."""
    gpu = tiny_llama(head_dim=16).cuda().to(torch.bfloat16)  # Triton's FlexAttention takes heads of 16 or more
    groups = random_groups(gpu.config.vocab_size, 8, seed=26)
    fast = ScoringEngine(gpu, EngineSettings(2048, 512, **variant)).score(groups)
    plain = ScoringEngine(gpu, EngineSettings(2048, 512, **default)).score(groups)
    for group, a, b in zip(groups, fast, plain, strict=True):
        for k, response in enumerate(group.responses):
            assert abs(a.sum_logprob[k] - b.sum_logprob[k]) / len(response) < 0.02


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
@pytest.mark.parametrize(
    "make", [tiny_llama, partial(tiny_llama, head_dim=16), tiny_gemma3], ids=["llama_head8", "llama_head16", "gemma3"]
)
def test_cuda_flex_attention_matches_cpu_reference(make, compile):
    """FlexAttention's Triton kernel over the block mask (grouped heads read as they are, sliding windows for
    Gemma 3), called compiled from an eager decoder or traced into a compiled one: the reference's scores. Heads
    of 8 take FlexAttention's eager form (Triton's needs 16)."""
    cpu = make()
    gpu = make().cuda()
    groups = random_groups(cpu.config.vocab_size, 10, seed=27, prompt=(1, 60), response=(1, 50), k=(1, 9))
    results = ScoringEngine(gpu, EngineSettings(1024, 256, attention="flex", compile=compile)).score(groups)
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            assert abs(naive_sum_logprob(cpu, group.prompt, response) - result.sum_logprob[k]) / len(response) < 1e-4
    assert gpu.config._attn_implementation == "sdpa"


@pytest.mark.parametrize(("attention", "dtype", "tolerance"),
                         [("mask", torch.float32, 1e-4), ("flex", torch.float32, 1e-4),
                          ("varlen", torch.bfloat16, 0.05)])  # fmt: skip
def test_cuda_launching_a_batch_never_waits_for_the_device(attention, dtype, tolerance):
    """Two batches in flight: the host launches batch i+1 while batch i runs, so nothing in a
    batch's launch may synchronize with the device (CUDA's sync debug mode raises on any operation that does);
    the sums read afterwards are the reference's (FlashAttention's variable-length kernel runs in bf16 only)."""
    cpu = tiny_llama(head_dim=16)
    gpu = tiny_llama(head_dim=16).cuda().to(dtype)
    engine = ScoringEngine(gpu, EngineSettings(1024, 256, attention=attention, batches_in_flight=2))
    groups = random_groups(cpu.config.vocab_size, 6, seed=28)
    engine.score(groups)  # warm-up: kernels built, pinned host blocks cached
    batch = build_batch(groups, [[0, 1, 2], [3, 4, 5]])
    torch.cuda.set_sync_debug_mode("error")
    try:
        copy = HostCopy(engine._score_batch(batch))
    finally:
        torch.cuda.set_sync_debug_mode("default")
    sums = copy.result()
    for c, (g, k) in enumerate(batch.candidates):
        response = groups[g].responses[k]
        assert abs(naive_sum_logprob(cpu, groups[g].prompt, response) - sums[c]) / len(response) < tolerance


@pytest.mark.parametrize("kv_heads", [8, 32])
def test_cuda_flash_varlen_equals_the_reference_kernel(kv_heads):
    """PyTorch's FlashAttention kernel as `packed_varlen_forward` calls it (bf16, 8B-shaped heads, grouped or not):
    each sequence's first keys_used keys without a causal mask, and each run causally, against the float32
    reference one sequence at a time; log-sum-exps in [heads, tokens]."""
    torch.manual_seed(29)
    n = 700
    q = torch.randn(n, 32, 128, device="cuda", dtype=torch.bfloat16)
    k, v = (torch.randn(n, kv_heads, 128, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    starts = torch.tensor([0, 300, 301, 512, 700], dtype=torch.int32, device="cuda")
    used = torch.tensor([256, 1, 100, 188], dtype=torch.int32, device="cuda")
    for kwargs in ({"causal": False, "keys_used": used}, {"causal": True}):
        out, lse = flash_varlen(q, k, v, starts, 300, scale=128**-0.5, **kwargs)
        want, want_lse = reference_varlen(q, k, v, starts, 300, scale=128**-0.5, **kwargs)
        assert lse.shape == (32, n)
        assert (out.float() - want.float()).abs().max() < 2e-2
        assert (lse - want_lse).abs().max() < 2e-2


def test_cuda_float32_varlen_takes_the_mask(monkeypatch):
    """FlashAttention takes no float32: there `varlen` gives every batch the dense mask (no slow reference on a
    GPU), and the scores are the reference's."""
    monkeypatch.setattr("grape.scoring.varlen_attention._eager_reference", None)  # calling it would fail
    cpu = tiny_llama(head_dim=16)
    gpu = tiny_llama(head_dim=16).cuda()
    groups = random_groups(cpu.config.vocab_size, 6, seed=30)
    engine = ScoringEngine(gpu, EngineSettings(1024, 256, attention="varlen"))
    assert not engine.varlen
    for group, result in zip(groups, engine.score(groups), strict=True):
        for k, response in enumerate(group.responses):
            assert abs(naive_sum_logprob(cpu, group.prompt, response) - result.sum_logprob[k]) / len(response) < 1e-4
