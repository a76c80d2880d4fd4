"""glibc's heap kept for the length of a CPU stage (a scoring call, a training run), so that the large blocks one
layer or step frees are reused by the next.

glibc serves a block of 32 MiB or more with its own ``mmap`` and unmaps it on ``free``, and gives the top of its
heap back to the system once more than 64 MiB lies free there (its steady state in a long-running process: the
dynamic thresholds stop rising there). A forward pass of a scoring batch on a CPU allocates and frees such blocks
in every layer (Gemma 3 270M's MLP over 8,192 tokens: 64 MiB each), so the kernel faults in and zeroes every page
of them again, layer after layer: a matrix product into a fresh 35 MiB block ran at 157 GFLOP/s against 181 into a
reused one (docs/performance.md). PyTorch's CPU tuning guides preload jemalloc or tcmalloc for this; `kept_heap`
gets the same from glibc itself, for the length of a block only:

- inside, ``mallopt`` tells glibc to serve every block from its heap (``M_MMAP_MAX`` 0) and never to shrink the
  heap (``M_TRIM_THRESHOLD`` -1, mallopt's "never"), so freed blocks are reused by the next layer;
- on leaving, glibc gets its steady state (``M_MMAP_MAX`` 65,536, ``M_MMAP_THRESHOLD`` 32 MiB,
  ``M_TRIM_THRESHOLD`` 64 MiB) and the kept pages go back to the system (``malloc_trim(0)``): the process's memory
  is its peak while the block runs and drops back after it.

Measured (docs/performance.md, 2026-12-05): the compiled engine on the default workload 1.5% faster per call
(10th-22nd of 31 rounds: 1.004-1.029), minor faults per call 66,600 against 218,600; a long call holds about one
batch's peak (~600 MiB over the model) until it ends; the peak itself is unchanged. Training steps of Gemma 3 270M on
4 x 256 tokens 1.33x faster (2nd-10th of 11 rounds: 1.195-1.367), 1.5 million minor faults a step against ~0.

``mallopt`` is process-wide, so the switch is left alone where it cannot apply or where the user chose an
allocator's behaviour: a C library other than glibc, one of glibc's ``MALLOC_…_`` variables for these options or a
``glibc.malloc`` tunable, a preloaded allocator. Nested blocks keep the heap until the outermost one ends.
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
from collections.abc import Iterator
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4  # glibc's malloc.h
NEVER_TRIM = -1  # mallopt(3): "-1 disables trimming completely" (a C int; as glibc's size_t threshold, the largest)
STEADY_MMAP_THRESHOLD = 32 * 2**20  # where glibc's dynamic threshold stops (DEFAULT_MMAP_THRESHOLD_MAX, 64-bit)
STEADY_TRIM_THRESHOLD = 2 * STEADY_MMAP_THRESHOLD  # glibc keeps the trim threshold at twice the mmap threshold
STEADY_MMAP_MAX = 65536  # glibc's default
# glibc's variables for what the switch changes (mallopt's M_* options by environment)
GLIBC_HEAP_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")

_lock = threading.Lock()
_depth = 0


def user_allocator_choice(environ: dict[str, str] | None = None) -> str | None:
    """The environment variable by which the user chose the allocator's behaviour, or None."""
    environ = os.environ if environ is None else environ
    for name in GLIBC_HEAP_VARIABLES:
        if name in environ:
            return name
    if "glibc.malloc" in environ.get("GLIBC_TUNABLES", ""):
        return "GLIBC_TUNABLES"
    if "malloc" in environ.get("LD_PRELOAD", ""):  # jemalloc, tcmalloc, mimalloc
        return "LD_PRELOAD"
    return None


def _glibc() -> ctypes.CDLL | None:
    """The process's glibc, where `kept_heap` may switch it; None elsewhere."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_allocator_choice():
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextmanager
def kept_heap(enabled: bool = True) -> Iterator[bool]:
    """Within the block glibc keeps freed memory in its heap (module docstring). Yields whether it does."""
    global _depth
    libc = _glibc() if enabled else None
    if libc is None:
        yield False
        return
    with _lock:
        if _depth == 0:
            libc.mallopt(M_MMAP_MAX, 0)
            libc.mallopt(M_TRIM_THRESHOLD, NEVER_TRIM)
        _depth += 1
    try:
        yield True
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                steady_state(libc)


def heap_is_kept() -> bool:
    """Whether a `kept_heap` block is keeping glibc's heap now (in any thread)."""
    return _depth > 0


def steady_state(libc: ctypes.CDLL) -> None:
    """glibc as a long-running process has it once its dynamic thresholds stop rising; free heap pages given back."""
    libc.mallopt(M_MMAP_MAX, STEADY_MMAP_MAX)
    libc.mallopt(M_MMAP_THRESHOLD, STEADY_MMAP_THRESHOLD)
    libc.mallopt(M_TRIM_THRESHOLD, STEADY_TRIM_THRESHOLD)
    libc.malloc_trim(0)
