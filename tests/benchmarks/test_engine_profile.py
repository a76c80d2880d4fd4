"""benchmarks/engine_profile.py: kernels sorted by kind, and a CPU profile that runs and reports its faults."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from engine_profile import kernel_kind, print_profile  # noqa: E402


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("sm90_xmma_gemm_bf16bf16_bf16f32", "matmul"),
        ("nvjet_tst_128x256_64x4_1x2_h_bz_coopA_NNT", "matmul"),
        ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop", "attention"),
        ("triton_per_fused_add_mul_rsqrt_0", "triton"),
        ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<float>", "copy"),
        ("void at::native::reduce_kernel<512, 1>", "reduction"),
        ("void at::native::vectorized_elementwise_kernel<4, at::native::AddFunctor<float>>", "elementwise"),
    ],
)
def test_kernels_are_sorted_by_kind(name, kind):
    assert kernel_kind(name) == kind


def test_a_cpu_profile_prints_the_table_and_the_faults(capsys):
    a = torch.randn(64, 64)
    print_profile(lambda: a @ a, torch.device("cpu"), rows=3)
    out = capsys.readouterr().out
    assert "aten::mm" in out
    assert "minor page faults" in out
