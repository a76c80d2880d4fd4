"""Where a scoring run's time goes: torch.profiler's operator table, the device's busy share and its time by
kind of kernel on a GPU, and the page faults the profiled run took on a CPU.

Read a CPU profile with its faults in view: the profiler's own small allocations land between the engine's
large blocks and stop glibc from reusing them, so a profiled run page-faults like glibc's default even with
the heap kept (grape/models/cpu_heap.py). Measured 2026-12-05 on the 2-core AVX-512 EPYC: a compiled block of
Gemma 3 270M's MLP over 4,424 rows, 18 times, kept heap: 0 faults and 182 GFLOP/s unprofiled; under the
profiler with shapes ~18,000 faults compiled, ~640,000 eager, and the gate and up products at 105 GFLOP/s
eager. So in a CPU profile the large products' share reads too high and their rate too low: a lower bound.
"""

from __future__ import annotations

import resource
import time

import torch


def print_profile(fn, device: torch.device, rows: int = 15) -> None:
    """Profile one call of ``fn`` and print the operators that took most device (or CPU) time."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    with profile(activities=activities) as prof:
        started = time.perf_counter()
        fn()
        wall = time.perf_counter() - started
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=60))
    if device.type != "cuda":
        print(f"wall {wall:.3f} s (profiled), {faults:,} minor page faults (the profiler's own allocations add some)")
        return
    kernels = [e for e in prof.events() if e.device_type == torch.autograd.DeviceType.CUDA]
    total = sum(e.self_device_time_total for e in kernels) / 1e6
    by_kind: dict[str, float] = {}
    for event in kernels:
        kind = kernel_kind(event.name)
        by_kind[kind] = by_kind.get(kind, 0.0) + event.self_device_time_total / 1e6
    print(
        f"wall {wall:.3f} s (profiled), device busy {total:.3f} s ({100 * total / wall:.1f}%); by kind: "
        + ", ".join(f"{k} {100 * v / total:.1f}%" for k, v in sorted(by_kind.items(), key=lambda kv: -kv[1]))
    )


def kernel_kind(name: str) -> str:
    """A CUDA kernel's kind from its name: matmul, attention, triton (fused), copy, reduction or elementwise."""
    lowered = name.lower()
    if any(t in lowered for t in ("gemm", "cutlass", "sm90_xmma", "nvjet", "cublas")):
        return "matmul"
    if any(t in lowered for t in ("fmha", "flash", "flex", "attention", "sdpa", "cudnn")):
        return "attention"
    if lowered.startswith("triton") or "_kernel" in lowered and "at::" not in lowered:
        return "triton"
    if "memcpy" in lowered or "copy" in lowered:  # torch.cat's kernel is CatArrayBatchedCopy
        return "copy"
    if "reduce" in lowered:
        return "reduction"
    return "elementwise"
