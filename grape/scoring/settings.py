"""Settings of the score stage and of its engine: plain dataclasses, importable without torch
(so that `grape --help` and the CLI's option defaults stay fast)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from grape.data.layout import Columns
from grape.models.embedded import DEFAULT_TARGET
from grape.models.fused_kernels import KERNEL_KINDS


@dataclass
class EngineSettings:
    """The engine's batching knobs; a field left None takes its device's default (`for_device`)."""

    batch_tokens: int | None = None  # tokens per forward pass (rows x longest row)
    max_row_tokens: int | None = None  # longest packed row; longer groups are split (the prompt repeated)
    logits_budget_bytes: int | None = None  # memory for one block of LM-head logits (rows x vocabulary tile)
    compile: bool = False  # torch.compile the decoder: fuses the elementwise work between the matmuls
    attention: str | None = None  # "segments": SDPA per prompt and per response; "mask": one mask per packed row;
    # "flex": FlexAttention with a block mask (skips the blocks nobody sees); "varlen": two variable-length
    # flash calls per layer, over the prompt and over each run (no mask; the mask where a window binds)
    kernels: str | None = None  # "liger": fused RMSNorm / SwiGLU / rotary kernels on a GPU; "torch"; "auto"
    vocab_tile: int | None = None  # vocabulary entries per LM-head matmul; None: the device's (`vocab_tile_for`)
    host_heap: str | None = None  # "kept": glibc keeps freed memory while scoring (grape/models/cpu_heap.py); "system"
    batches_in_flight: int | None = None  # batches launched before the oldest one's sums are read (in_flight.py):
    # 2 lets a GPU run one batch while the host builds and launches the next

    def __post_init__(self):
        if self.attention not in (None, *ATTENTION_KINDS):
            raise ValueError(f"attention must be one of {', '.join(ATTENTION_KINDS)}, not {self.attention!r}")
        if self.kernels not in (None, *KERNEL_KINDS):
            raise ValueError(f"kernels must be one of {', '.join(KERNEL_KINDS)}, not {self.kernels!r}")
        if self.host_heap not in (None, *HOST_HEAP_KINDS):
            raise ValueError(f"host_heap must be one of {', '.join(HOST_HEAP_KINDS)}, not {self.host_heap!r}")
        if self.batches_in_flight is not None and self.batches_in_flight < 1:
            raise ValueError(f"batches_in_flight must be at least 1, not {self.batches_in_flight}")

    def for_device(self, device_type: str) -> EngineSettings:
        """These settings with every unset field filled by the defaults measured for ``device_type``."""
        defaults = DEVICE_DEFAULTS["cuda" if device_type == "cuda" else "cpu"]
        return EngineSettings(**{f.name: getattr(self, f.name) or getattr(defaults, f.name) for f in fields(self)})


ATTENTION_KINDS = ("segments", "mask", "flex", "varlen")
HOST_HEAP_KINDS = ("kept", "system")

# Measured in docs/performance.md. On a CPU each prompt and each response attends on its own ("segments":
# the packed row's square is never computed), so rows may be long: a group up to 4,096 tokens is not split
# into pieces that each repeat its prompt (768-token prompts x 8 responses: 2.3x faster than 1,024-token rows;
# AlpacaEval's 15 answers: 1.5x faster than one mask over each 4,096-token row). The LM head works on 2,048
# rows x a 2,048-entry vocabulary tile (24 MiB). On a GPU the matmuls dominate (cuDNN's attention handles the
# packed mask): larger batches keep them busy, and longer rows stop a group of many long candidates from being
# split (an 8B target, K=8, 512-token prompts: 40% of the datasheet peak with 4,096-token rows against 24%
# with 1,024).
DEVICE_DEFAULTS = {
    "cpu": EngineSettings(
        batch_tokens=8192,
        max_row_tokens=4096,
        logits_budget_bytes=24 * 2**20,
        attention="segments",
        kernels="torch",
        host_heap="kept",
        batches_in_flight=1,
    ),
    "cuda": EngineSettings(
        batch_tokens=16384,
        max_row_tokens=4096,
        logits_budget_bytes=1024 * 2**20,
        attention="mask",
        kernels="auto",
        host_heap="system",
        batches_in_flight=1,  # 2 overlaps the host's next batch with the device's run: not yet measured on a GPU
    ),
}


@dataclass
class ScoreSettings:
    model: str = DEFAULT_TARGET
    template: str = "paper"  # paper | few-shot | chat | raw | path to a .jinja file (grape.text)
    eos: bool = True
    dtype: str = "auto"
    device: str = "auto"
    on_error: str = "fail"
    layout: str = "auto"
    columns: Columns = field(default_factory=Columns)
    split: str | None = None
    subset: str | None = None  # a Hub dataset's config name
    revision: str | None = None  # a Hub dataset's branch, tag or commit
    engine: EngineSettings = field(default_factory=EngineSettings)
    trust_remote_code: bool = False
    part_size: int = 256  # instructions per saved part: a killed run loses at most one part per worker
    limit: int | None = None  # score only the first N instructions of the input (a trial run); None: all
