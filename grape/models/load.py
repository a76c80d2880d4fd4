"""Load a target model and its tokenizer from an alias, a GGUF file, a local directory or a Hub id.

A GGUF file is dequantized by transformers once; the plain weights are then cached as safetensors
(in ``$GRAPE_CACHE_DIR`` or ``~/.cache/grape``) so that the next load takes seconds.
"""

from __future__ import annotations

import copy
import fcntl
import functools
import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from grape.errors import GrapeError
from grape.models.dtypes import dtype_name
from grape.models.embedded import EMBEDDED
from grape.models.hub_ids import could_be_hub_id
from grape.models.hub_reach import cached_snapshot, hub_reachable
from grape.models.small_batch_head import use_small_batch_head


@dataclass
class LoadedModel:
    model: Any  # a transformers PreTrainedModel (causal LM), in eval mode
    tokenizer: Any
    identity: dict[str, Any] = field(default_factory=dict)  # what was loaded, for the sidecar

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        return next(self.model.parameters()).dtype


def cache_root() -> Path:
    return Path(os.environ.get("GRAPE_CACHE_DIR", Path.home() / ".cache" / "grape"))


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise GrapeError("--device cuda was asked for, but torch sees no CUDA device")
    if name != "cpu" and not name.startswith("cuda"):
        raise GrapeError(f"unknown device '{name}': use auto, cpu or cuda[:N]")
    return torch.device(name)


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """``auto`` is bfloat16 on a GPU that has it, float32 elsewhere (see docs/performance.md)."""
    name = dtype_name(name)
    if name == "auto":
        return torch.bfloat16 if device.type == "cuda" and torch.cuda.is_bf16_supported() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def resolve_model_dir(spec: str, trust_remote_code: bool = False) -> tuple[str, dict[str, Any]]:
    """Return (a directory or Hub id that from_pretrained loads, identity) for a --model value."""
    if spec in EMBEDDED:
        gguf = EMBEDDED[spec].gguf_path()
        return str(converted_gguf_dir(gguf)), {
            "spec": spec,
            "kind": "embedded",
            "gguf": gguf.name,
            "package": EMBEDDED[spec].package,
        }
    path = Path(spec).expanduser()
    if path.suffix == ".gguf":
        if not path.is_file():
            raise GrapeError(f"{spec}: no such GGUF file")
        return str(converted_gguf_dir(path)), {"spec": spec, "kind": "gguf", "gguf": str(path.resolve())}
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise GrapeError(f"{spec}: a directory without config.json is not a transformers model")
        return str(path), {"spec": spec, "kind": "local", "path": str(path.resolve())}
    if path.exists():
        raise GrapeError(f"{spec}: expected a model directory, a .gguf file, or one of {sorted(EMBEDDED)}")
    if not could_be_hub_id(spec):  # a mistyped path: say so now, not as the Hub client's complaint at load time
        raise GrapeError(f"{spec}: no such model directory (nor a Hub id, which is NAME or OWNER/NAME); give a "
                         f"model directory, a .gguf file, or one of {sorted(EMBEDDED)}")  # fmt: skip
    if not hub_reachable():  # from the cache, or refused now rather than after the Hub client's retries
        return cached_snapshot(spec, sorted(EMBEDDED)), {"spec": spec, "kind": "hub"}
    return spec, {"spec": spec, "kind": "hub"}


def load_model(spec: str, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False) -> LoadedModel:
    """Load a causal LM and its tokenizer for scoring or generation (eval mode, no grad)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()

    target, identity = resolve_model_dir(spec, trust_remote_code)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, trust_remote_code=trust_remote_code)
        model = AutoModelForCausalLM.from_pretrained(
            target, dtype=torch_dtype, trust_remote_code=trust_remote_code, attn_implementation="sdpa"
        )
    except OSError as exc:  # not found locally and no hub access
        raise GrapeError(f"cannot load model '{spec}': {exc}".splitlines()[0]) from exc
    except pickle.UnpicklingError as exc:  # torch.load(weights_only=True) met code, not just tensors
        raise GrapeError(_refused_pickle_message(spec, exc)) from exc
    model.to(torch_device).eval()
    if torch_device.type == "cpu":
        use_small_batch_head(model)  # a few rows' LM head in the orientation MKL runs fast
    identity.update(
        name_or_path=getattr(model.config, "_name_or_path", target),
        model_type=model.config.model_type,
        dtype=str(torch_dtype).removeprefix("torch."),
        device=str(torch_device),
        n_parameters=sum(p.numel() for p in model.parameters()),
    )
    return LoadedModel(model, tokenizer, identity)


def _refused_pickle_message(spec: str, exc: Exception) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    what = next((line for line in lines if "GLOBAL" in line), lines[-1] if lines else "")
    return (
        f"refused to load model '{spec}': its pickle weights (.bin) hold code, not only tensors ({what}); "
        "get the model as .safetensors, or convert it where you trust its source"
    )


def quiet_transformers() -> None:
    """grape shows its own progress; transformers' per-load bars and advice would drown it."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()


@contextmanager
def _no_gguf_bar() -> Iterator[None]:
    """transformers' GGUF reader draws its own tqdm bar, which its progress-bar switch does not reach; grape's status
    line already says what is happening."""
    from transformers import modeling_gguf_pytorch_utils as reader

    bar = getattr(reader, "tqdm", None)
    if bar is not None:
        reader.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        if bar is not None:
            reader.tqdm = bar


def converted_gguf_dir(gguf: Path) -> Path:
    """Dequantize a GGUF file into a plain safetensors directory once, and return that directory."""
    gguf = gguf.resolve()
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    target = cache_root() / "models" / f"{gguf.stem}-{key}"
    done = target / "grape-source.json"
    if done.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.with_name(target.name + ".lock").open("a") as lock:
        # Another process converting the same file (two Ray workers on a fresh machine): wait for it and
        # take its result; alone, the lock makes the fixed `.partial` folder below this process's own.
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.is_file():
            _convert_gguf(gguf, target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from grape.console import status

    quiet_transformers()
    with status(f"Converting {gguf.name} to safetensors (once; cached in {target.parent})"), _no_gguf_bar():
        tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        quantized = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
        # A GGUF-loaded model is marked quantized and refuses save_pretrained; a fresh model built
        # from the same config without the quantization marker holds the same (dequantized) weights.
        config = copy.deepcopy(quantized.config)
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
        plain.load_state_dict(quantized.state_dict())
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        plain.save_pretrained(partial)
        tokenizer.save_pretrained(partial)
        (partial / "grape-source.json").write_text(json.dumps({"gguf": str(gguf)}))
        shutil.rmtree(target, ignore_errors=True)
        partial.rename(target)
