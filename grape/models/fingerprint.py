"""One fingerprint of a model for every cache in grape: the files behind a model spec, or a model in memory.

The scoring stage keys its saved parts by it and the pipeline keys its stages by it, so a score
computed with other weights is never reused. It covers everything that decides the scores: the sha256
of every byte of the model's files (weights, config, tokenizer), or of every tensor in memory. A
sample would miss a change elsewhere (one tensor of 272 scaled in place kept stale scores, issue 19).

Hashing runs at about 1 GB/s, and a file is hashed once per version: ``file-hashes.json`` in grape's
cache folder remembers each digest under the file's path, size, device, inode, mtime and ctime, so a
second fingerprint costs a stat per file. The ctime is there because tools set a file's mtime back
(``cp -p``, ``rsync -t``, ``touch -d``) but none can set its ctime.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from grape.models.embedded import EMBEDDED

if TYPE_CHECKING:
    from grape.models.load import LoadedModel

METHODS = {  # how each kind of fingerprint was made, for the sidecar (see `fingerprint_method`)
    "files": "sha256 of every file of the model folder (name, size, content); file digests cached by "
    "path, size, inode, mtime and ctime",
    "gguf": "sha256 of the GGUF file; cached by path, size, inode, mtime and ctime",
    "hub": "the Hub id only: transformers resolves the files, which are not hashed",
    "memory": "sha256 of the config, every tensor and the tokenizer of the model in memory",
    "adapter": "sha256 of every file of the PEFT adapter folder and of its base model's fingerprint",
}
# Left by transformers' Trainer beside a checkpoint; they do not decide any score (an optimizer state
# is twice the size of the weights, so hashing it would triple the work for nothing).
_NOT_THE_MODEL = {"optimizer.pt", "scheduler.pt", "training_args.bin", "trainer_state.json", "README.md"}
# A file changed within this many seconds of being hashed may change again within one tick of the
# file system's clock, unseen by its dates; its digest is not remembered (git's "racy clean" rule).
_SETTLE_SECONDS = 2.0
_LARGE_BYTES = 2**30  # hashing this much shows a spinner


def model_fingerprint(spec: str) -> str:
    """A fingerprint of the model files behind ``spec``, from their content (not their dates or place).

    A GGUF file is fingerprinted as it is: converting it here (on a Ray driver that never loads the
    model) would cost minutes.
    """
    path = Path(spec).expanduser()
    gguf = EMBEDDED[spec].gguf_path() if spec in EMBEDDED else path if path.suffix == ".gguf" else None
    hashes = FileHashes()
    if gguf is not None and gguf.is_file():
        return f"gguf:{hashes.sha256(gguf)[:24]}"  # its content alone: a renamed copy is the same model
    from grape.models.load import resolve_model_dir  # here: checking a pipeline must not import torch

    target, identity = resolve_model_dir(spec)  # raises the loader's own message for a bad spec
    if identity["kind"] == "hub":
        return f"hub:{spec}"  # transformers resolves it from its own cache; the id is all we know
    files = sorted(p for p in Path(target).iterdir() if p.is_file() and _decides_scores(p.name))
    lines = "".join(_file_line(f, hashes) for f in files)
    if identity["kind"] == "adapter":  # the base's weights decide the scores as much as the adapter's
        return f"adapter:{_digest((lines + model_fingerprint(identity['base']['spec'])).encode())[:24]}"
    return f"files:{_digest(lines.encode())[:24]}"


def fingerprint_method(fingerprint: str) -> str:
    """How a fingerprint from this module was made, in words (for the sidecar, next to the fingerprint)."""
    return METHODS.get(fingerprint.partition(":")[0], "unknown")


def loaded_fingerprint(loaded: LoadedModel) -> str:
    """A fingerprint of a model already in memory: its config, every byte of every tensor, its tokenizer."""
    import torch  # here, so that the pipeline can fingerprint model files without importing torch

    digest = hashlib.sha256(loaded.model.config.to_json_string().encode())
    seen: dict[tuple[int, tuple[int, ...]], str] = {}  # tied weights (embedding and head) are hashed once
    for name, tensor in sorted(loaded.model.state_dict().items()):
        digest.update(f"{name}|{tuple(tensor.shape)}|{tensor.dtype}|".encode())
        same = (tensor.data_ptr(), tuple(tensor.shape))
        if same in seen:
            digest.update(f"= {seen[same]}".encode())
            continue
        seen[same] = name
        flat = tensor.detach().to("cpu").contiguous().reshape(-1)
        digest.update(flat.view(torch.uint8).numpy())
    digest.update(_tokenizer_text(loaded.tokenizer).encode())
    return f"memory:{digest.hexdigest()[:24]}"


class FileHashes:
    """sha256 digests of files, remembered in ``<cache>/file-hashes.json`` under each file's signature."""

    def __init__(self) -> None:
        from grape.models.load import cache_root

        self.path = cache_root() / "file-hashes.json"
        self._known = _read_json(self.path)

    def sha256(self, file: Path) -> str:
        file = file.resolve()
        before = file.stat()
        entry = self._known.get(str(file))
        if entry is not None and entry.get("signature") == _signature(before):
            return entry["sha256"]
        started = time.time()
        digest = _hash_file(file, before.st_size)
        settled = max(before.st_mtime_ns, before.st_ctime_ns) < (started - _SETTLE_SECONDS) * 1e9
        if settled and _signature(file.stat()) == _signature(before):  # not written while it was read
            self._remember(str(file), {"signature": _signature(before), "sha256": digest})
        return digest

    def _remember(self, name: str, entry: dict[str, Any]) -> None:
        """Add one digest to the cache file, merged with what other processes wrote there meanwhile.
        A cache that cannot be written (a read-only home) only means hashing again next time."""
        self._known[name] = entry
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.with_suffix(".lock").open("a") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX)
                known = {**_read_json(self.path), name: entry}
                known = {key: value for key, value in known.items() if os.path.exists(key)}  # forget removed files
                temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
                temporary.write_text(json.dumps(known, indent=1) + "\n")
                os.replace(temporary, self.path)
        except OSError:
            pass


def _signature(stat: os.stat_result) -> list[int]:
    return [stat.st_size, stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns]


def _hash_file(file: Path, size: int) -> str:
    with file.open("rb") as handle:
        if size < _LARGE_BYTES:
            return hashlib.file_digest(handle, "sha256").hexdigest()
        from grape.console import status

        with status(f"Fingerprinting {file.name} ({size / 1e9:.1f} GB; once per version of the file)"):
            return hashlib.file_digest(handle, "sha256").hexdigest()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):  # absent, unreadable or damaged: start afresh
        return {}
    return data if isinstance(data, dict) else {}


def _decides_scores(name: str) -> bool:
    return not name.startswith(".") and name not in _NOT_THE_MODEL and not name.startswith("rng_state")


def _tokenizer_text(tokenizer: Any) -> str:
    """Everything of a tokenizer that decides token ids: its full serialisation when it is a fast one."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(sorted(tokenizer.get_vocab().items()))
    specials = [tokenizer.bos_token_id, tokenizer.eos_token_id, getattr(tokenizer, "chat_template", None)]
    return text + json.dumps(specials)


def _file_line(path: Path, hashes: FileHashes) -> str:
    return f"{path.name}|{path.stat().st_size}|{hashes.sha256(path)}\n"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
