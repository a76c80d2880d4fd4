"""Measuring helpers for the benchmarks: peak memory of a block, the machine's measured matmul peak, and
the machine's state (load average, CPUs, threads, versions) to record beside every figure."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass

import torch

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss_bytes() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * PAGE


@contextmanager
def peak_rss(result: dict):
    """Sample resident memory every 2 ms; ``result['peak_delta']`` = peak minus the level at entry."""
    start = rss_bytes()
    peak = [start]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        result["peak_delta"] = max(peak[0], rss_bytes()) - start


@contextmanager
def peak_memory(result: dict, device: torch.device):
    """``result['peak_delta']``: the block's peak memory above the level at entry, in bytes: the CUDA
    allocator's peak on a GPU, resident memory (sampled) on the CPU."""
    if device.type != "cuda":
        with peak_rss(result):
            yield
        return
    torch.cuda.synchronize(device)
    start = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    try:
        yield
    finally:
        torch.cuda.synchronize(device)
        result["peak_delta"] = torch.cuda.max_memory_allocated(device) - start


@dataclass(frozen=True)
class MatmulRates:
    """One measurement of the machine's dense matmul speed (FLOP/s).

    ``best``: the fastest of the first ``repeats`` products (best of 5 by default), the peak as the
    benchmarks have always quoted it and as issue 12's goals are judged. ``best_of_window``: the fastest
    of every product in the window; on a VM whose speed jitters, the maximum of ~100 products sits a few
    percent above the maximum of 5, so it is a stricter yardstick, recorded beside. ``sustained``: all
    products' FLOPs over all their time, back to back for at least the asked seconds. On a quiet,
    dedicated machine the three agree; on a shared VM the best product catches a burst while a workload
    running for seconds sees the average, so ``sustained`` is the yardstick measured the way a
    workload's own rate is."""

    best: float
    sustained: float
    products: int
    best_of_window: float


def matmul_rates(
    dtype: torch.dtype, device: torch.device, n: int | None = None, repeats: int = 5, min_seconds: float = 0.0
) -> MatmulRates:
    """Square products of side ``n`` (2,048 on a CPU; 8,192 on a GPU, which small products leave partly
    idle), at least ``repeats`` of them and until ``min_seconds`` have passed, after one warm-up. The peak
    (``best``) is taken over the first ``repeats`` only, so that it means the same whatever the window's
    length: before 2026-12-05 it was the fastest of the whole window (now ``best_of_window``)."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.matmul(a, b)  # warm-up
    times: list[float] = []
    while len(times) < repeats or sum(times) < min_seconds:
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    flops = 2 * n**3
    return MatmulRates(
        best=flops / min(times[:repeats]),
        sustained=flops * len(times) / sum(times),
        products=len(times),
        best_of_window=flops / min(times),
    )


def matmul_peak_flops(dtype: torch.dtype, device: torch.device, n: int | None = None, repeats: int = 5) -> float:
    """The machine's measured dense matmul peak (FLOP/s) in ``dtype``, the best of ``repeats`` products:
    the yardstick for utilisation (matmul_rates)."""
    return matmul_rates(dtype, device, n, repeats).best


def load_average() -> float:
    """The 1-minute load average: runnable threads, averaged. On a quiet machine it is about the number
    of threads this benchmark itself keeps busy; much more means other jobs share the cores."""
    return os.getloadavg()[0]


def machine_state(device: torch.device) -> dict:
    """What to record beside a figure: processor, cores, threads, versions, date."""
    import datetime
    import platform

    import transformers

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
    }
