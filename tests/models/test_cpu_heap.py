"""`kept_heap`: the scoring engine's large blocks are reused inside it instead of faulted afresh in every layer, the
scores do not change, and on leaving the kept memory goes back to the system. Counted with the kernel's own figures
(minor faults from getrusage, resident pages from /proc), on real allocations of a real engine."""

import platform
import subprocess
import sys

import pytest

from grape.models.cpu_heap import kept_heap, user_allocator_choice
from grape.scoring.settings import DEVICE_DEFAULTS, EngineSettings

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc" or user_allocator_choice() is not None,
    reason="the switch applies to glibc on Linux, with no allocator chosen by the environment",
)


# Each check runs in a fresh interpreter, whose heap holds nothing else: in pytest's, what other tests left in the heap
# decides where a block lands.
ENGINE = """
import random, resource, torch
from transformers import AutoModelForCausalLM, LlamaConfig
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup

torch.manual_seed(0)
config = LlamaConfig(vocab_size=384, hidden_size=32, intermediate_size=16384, num_hidden_layers=4,
                     num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
model = AutoModelForCausalLM.from_config(config, dtype=torch.float32, attn_implementation="sdpa").eval()
rng = random.Random(0)
draw = lambda n: [rng.randrange(3, 384) for _ in range(n)]
groups = [TokenGroup(draw(200), [draw(80) for _ in range(4)]) for _ in range(2)]  # 1,040 tokens: 65 MiB blocks
for _ in range(2):
    engine = ScoringEngine(model, EngineSettings(batch_tokens=2048, max_row_tokens=1024, host_heap=HEAP))
    engine.score(groups)  # untimed: the heap reaches its steady state
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    sums = engine.score(groups)[0].sum_logprob.tolist()
    print(HEAP, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before, *sums)
"""

GIVEN_BACK = """
import torch
from grape.models.cpu_heap import kept_heap

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

with kept_heap() as kept:
    with kept_heap():
        pass
    block = torch.ones(64 * 2**20)  # 256 MiB from the heap
    del block
    held = resident()  # the inner block's end left the heap kept
print(kept, held - resident())
"""

ABOVE_TWO_GIB = """
import ctypes
from grape.models.cpu_heap import kept_heap

libc = ctypes.CDLL(None)
libc.malloc.restype, libc.malloc.argtypes, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_size_t], [ctypes.c_void_p]

def resident():
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096

size = 5 * 2**29  # 2.5 GiB at the heap's top (nothing allocated above it before it is freed)
with kept_heap():
    before = resident()
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
    print(resident() - before)
"""


def run(script: str) -> list[list[str]]:
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return [line.split() for line in out.splitlines()]


@glibc
def test_the_engine_on_a_kept_heap_faults_its_large_blocks_far_less_and_scores_the_same():
    # each heap in an interpreter of its own: after a kept call, glibc may hold the freed blocks in the middle of its
    # heap (below a small live allocation, where trimming cannot reach), and a later call on its defaults then reuses
    # them; that layout is chance, and once made a system call fault like a kept one (66,698 against ~267,000)
    lines = [line for heap in ("system", "kept") for line in run(f"HEAP = {heap!r}\n" + ENGINE)]
    faults = {heap: [int(line[1]) for line in lines if line[0] == heap] for heap in ("system", "kept")}
    sums = {tuple(line[2:]) for line in lines}
    assert len(sums) == 1  # the same sums, to the last digit
    # glibc maps each 65 MiB MLP block afresh (~16,600 pages, 3 per layer, 4 layers): ~200,000 faults a call; kept,
    # only the first layer's blocks, after the previous call's heap went back
    assert min(faults["system"]) > 150_000
    assert max(faults["kept"]) < min(faults["system"]) / 3


@glibc
def test_the_kept_heap_holds_its_memory_until_the_outermost_block_ends_then_gives_it_back():
    (kept, given_back), *_ = run(GIVEN_BACK)
    assert kept == "True"
    assert int(given_back) > 200 * 2**20


@glibc
def test_the_kept_heap_keeps_a_free_top_larger_than_two_gib():
    """mallopt's threshold is a C int: 2**31 - 1 still trimmed a free top of over 2 GiB (a training step's logits
    and their gradients), so pages were faulted again every step; -1 is mallopt(3)'s "never"."""
    (held,), *_ = run(ABOVE_TWO_GIB)
    assert int(held) > 2 * 2**30


def test_a_disabled_block_or_a_user_chosen_allocator_leaves_glibc_alone(monkeypatch):
    with kept_heap(enabled=False) as kept:
        assert not kept
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "0")
    with kept_heap() as kept:
        assert not kept


@pytest.mark.parametrize(
    ("environ", "choice"),
    [
        ({}, None),
        ({"MALLOC_ARENA_MAX": "2", "PATH": "/bin"}, None),  # arenas: not what the switch changes
        ({"MALLOC_MMAP_MAX_": "0"}, "MALLOC_MMAP_MAX_"),
        ({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=1"}, "GLIBC_TUNABLES"),
        ({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2"}, None),
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "LD_PRELOAD"),
        ({"LD_PRELOAD": "/opt/libtcmalloc_minimal.so"}, "LD_PRELOAD"),
    ],
)
def test_user_allocator_choice(environ, choice):
    assert user_allocator_choice(environ) == choice


def test_the_cpu_engine_keeps_the_heap_and_the_gpu_engine_does_not():
    assert DEVICE_DEFAULTS["cpu"].host_heap == "kept"
    assert DEVICE_DEFAULTS["cuda"].host_heap == "system"
    assert EngineSettings(host_heap="system").for_device("cpu").host_heap == "system"
    with pytest.raises(ValueError, match="host_heap must be one of kept, system"):
        EngineSettings(host_heap="jemalloc")
