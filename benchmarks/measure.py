"""Measuring helpers for the benchmarks: peak resident memory of a block, matmul peak, model FLOPs."""

from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager

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


def matmul_peak_flops(dtype: torch.dtype, device: torch.device, n: int | None = None, repeats: int = 5) -> float:
    """The machine's measured dense matmul rate (FLOP/s) in ``dtype``: the yardstick for utilisation.
    Square products of side 2,048 on a CPU; 8,192 on a GPU, which small products leave partly idle."""
    n = n or (8192 if device.type == "cuda" else 2048)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.matmul(a, b)  # warm-up
    best = float("inf")
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        started = time.perf_counter()
        torch.matmul(a, b)
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - started)
    return 2 * n**3 / best


def useful_flops(model, prompt_tokens: int, response_tokens: list[int]) -> float:
    """FLOPs one instruction needs at the least: the transformer once over P + sum(R) tokens (prompt
    shared), the LM head only on the response tokens, attention scores over each sequence's causal
    prefix. Embedding lookups are free."""
    config = model.config
    head = model.get_output_embeddings().weight
    body_params = sum(p.numel() for p in model.parameters()) - head.numel()
    if not getattr(config, "tie_word_embeddings", False):
        body_params -= model.get_input_embeddings().weight.numel()
    n_tokens = prompt_tokens + sum(response_tokens)
    width = config.num_attention_heads * (
        getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    )
    # QK^T and PV (2 matmuls x 2 FLOPs per multiply-add): prompt rows see a causal triangle of the prompt,
    # response rows see the whole prompt plus a causal triangle of their own response.
    pairs = prompt_tokens**2 / 2 + sum(r * prompt_tokens + r**2 / 2 for r in response_tokens)
    attention = config.num_hidden_layers * 4 * width * pairs
    return 2 * body_params * n_tokens + 2 * head.numel() * sum(response_tokens) + attention
