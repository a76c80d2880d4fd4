"""Load a target model and its tokenizer from an alias, a GGUF file, a local directory or a Hub id.

A GGUF file is dequantized by transformers once; the plain weights are then cached as safetensors
(in ``$GRAPE_CACHE_DIR`` or ``~/.cache/grape``) so that the next load takes seconds.

A folder that holds a PEFT adapter (``adapter_config.json``, or ``adapter/`` as ``grape sft --save adapter``
writes it) is its base model (``base_model_name_or_path``: any of the above, another adapter included) with the
adapter merged in, and the adapter folder's tokenizer when it has one (sft saves it there).
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

ADAPTER_CONFIG = "adapter_config.json"


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
    adapter = adapter_dir(path)
    if adapter is not None:  # transformers' from_pretrained puts the adapter in this folder on its base itself
        return str(adapter), {"spec": spec, "kind": "adapter", "adapter": str(adapter.resolve()),
                              "base": adapter_base_identity(adapter, trust_remote_code)}  # fmt: skip
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


def adapter_dir(path: Path) -> Path | None:
    """The PEFT adapter folder of ``path``: an sft OUTDIR saved with ``--save adapter`` (its ``adapter/``) or a
    bare adapter folder; None for anything else (a full model wins over an adapter beside it)."""
    if not path.is_dir() or (path / "config.json").is_file():
        return None
    for folder in (path, path / "adapter"):
        if (folder / ADAPTER_CONFIG).is_file():
            return folder
    return None


def adapter_base(adapter: Path) -> str:
    """The base model an adapter folder was trained on: its adapter_config.json's ``base_model_name_or_path``."""
    try:
        base = json.loads((adapter / ADAPTER_CONFIG).read_text()).get("base_model_name_or_path")
    except ValueError as exc:
        raise GrapeError(f"{adapter / ADAPTER_CONFIG}: not valid JSON ({exc})") from exc
    if not base:
        raise GrapeError(f"{adapter / ADAPTER_CONFIG}: names no base_model_name_or_path to put the adapter on")
    return str(base)


def adapter_base_identity(adapter: Path, trust_remote_code: bool = False) -> dict[str, Any]:
    """The identity of the base model of ``adapter``; a GrapeError naming both when the base cannot be found."""
    base = adapter_base(adapter)
    try:
        return resolve_model_dir(base, trust_remote_code)[1]
    except GrapeError as exc:
        raise GrapeError(f"{adapter}: a PEFT adapter whose base model {base} (base_model_name_or_path in "
                         f"{ADAPTER_CONFIG}) cannot be found: {exc}") from None  # fmt: skip


def pretrained_model(auto_class: Any, target: str, identity: dict[str, Any], **options: Any) -> Any:
    """``auto_class.from_pretrained(target, **options)``, and for a PEFT adapter folder (``identity`` kind
    ``adapter``) its base model loaded so, with the adapter merged in and named by the adapter's folder (a LoRA
    trained on it then names this folder as its base)."""
    if identity.get("kind") != "adapter":
        return auto_class.from_pretrained(target, **options)
    from peft import PeftConfig, PeftModel

    base_target, base = resolve_model_dir(identity["base"]["spec"], options.get("trust_remote_code", False))
    config = PeftConfig.from_pretrained(target)
    config.task_type = None  # PEFT's task-free wrapper: a causal LM's LoRA also goes on a classifier's body
    model = PeftModel.from_pretrained(pretrained_model(auto_class, base_target, base, **options), target, config=config)
    model = model.merge_and_unload()
    model.name_or_path = model.config._name_or_path = identity["adapter"]
    return model


def tokenizer_dir(target: str, identity: dict[str, Any], trust_remote_code: bool = False) -> str:
    """Where the tokenizer of ``target`` is: an adapter folder's own, else its base's."""
    if identity.get("kind") != "adapter" or (Path(target) / "tokenizer_config.json").is_file():
        return target
    base_target, base = resolve_model_dir(identity["base"]["spec"], trust_remote_code)
    return tokenizer_dir(base_target, base, trust_remote_code)


def load_model(spec: str, dtype: str = "auto", device: str = "auto", trust_remote_code: bool = False) -> LoadedModel:
    """Load a causal LM and its tokenizer for scoring or generation (eval mode, no grad)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    quiet_transformers()

    target, identity = resolve_model_dir(spec, trust_remote_code)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    try:
        tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir(target, identity, trust_remote_code),
                                                  trust_remote_code=trust_remote_code)  # fmt: skip
        model = pretrained_model(AutoModelForCausalLM, target, identity, dtype=torch_dtype,
                                 trust_remote_code=trust_remote_code, attn_implementation="sdpa")  # fmt: skip
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
