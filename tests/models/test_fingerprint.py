"""The model fingerprint covers every byte that decides the scores, and hashes each file version once."""

import copy
import hashlib
import json
import os
import shutil
import time

import pytest
import torch
from safetensors_files import scale_tensor_in_place, tensor_the_old_samples_missed, write_llama_over_64_mb

from grape.models.embedded import EMBEDDED
from grape.models.fingerprint import FileHashes, fingerprint_method, loaded_fingerprint, model_fingerprint


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    """A cache folder of this test's own, so that what one test remembers cannot help another."""
    monkeypatch.setenv("GRAPE_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def large_model(tmp_path_factory):
    """A model folder with an 85 MB weights file, written once and more than two seconds old when used
    (younger files are not remembered: see `test_a_file_written_just_now_is_hashed_again`)."""
    folder = tmp_path_factory.mktemp("large")
    weights = write_llama_over_64_mb(folder)
    time.sleep(max(0.0, 2.1 - (time.time() - weights.stat().st_mtime)))
    return folder


def test_scaling_one_tensor_in_place_changes_the_fingerprint(large_model, tmp_path):
    """Issue 19 #4: the old fingerprint hashed three 1 MB samples of files over 64 MB, so scaling a
    tensor outside them kept the fingerprint, and a resumed run kept the old model's scores."""
    model = shutil.copytree(large_model, tmp_path / "model", copy_function=shutil.copy2)  # keeps the dates
    weights = model / "model.safetensors"
    before = model_fingerprint(str(model))
    assert before.startswith("files:")
    assert model_fingerprint(str(model)) == before == model_fingerprint(str(large_model))
    stat = weights.stat()
    scale_tensor_in_place(weights, tensor_the_old_samples_missed(weights), 3.0)
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # as `cp -p` or `rsync -t` leave it
    after = weights.stat()
    assert (after.st_size, after.st_ino, after.st_mtime_ns) == (stat.st_size, stat.st_ino, stat.st_mtime_ns)
    changed = model_fingerprint(str(model))
    assert changed != before
    fresh = shutil.copytree(model, tmp_path / "fresh")  # new place, new dates, same bytes: same fingerprint
    assert model_fingerprint(str(fresh)) == changed


def test_the_second_fingerprint_reads_the_cache_not_the_file(large_model):
    weights = (large_model / "model.safetensors").resolve()
    first = FileHashes()
    digest = first.sha256(weights)
    with weights.open("rb") as handle:
        assert digest == hashlib.file_digest(handle, "sha256").hexdigest()
    saved = json.loads(first.path.read_text())[str(weights)]
    stat = weights.stat()
    assert saved == {
        "signature": [stat.st_size, stat.st_dev, stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns],
        "sha256": digest,
    }
    # A marker in place of the digest proves that a later call answers from the cache, not by hashing (a
    # time bound would say the same less surely: a loaded machine makes any bound flaky).
    first.path.write_text(json.dumps({str(weights): {**saved, "sha256": "from-the-cache"}}))
    assert FileHashes().sha256(weights) == "from-the-cache"


def test_a_file_written_just_now_is_hashed_again(tmp_path):
    """A file changed within a tick of the file system's clock after being hashed keeps its dates: a
    digest taken less than two seconds after the file's last change is used once, not remembered."""
    file = tmp_path / "weights.bin"
    file.write_bytes(b"a" * 1000)
    hashes = FileHashes()
    assert hashes.sha256(file) == hashlib.sha256(b"a" * 1000).hexdigest()
    assert not hashes.path.exists() or str(file.resolve()) not in json.loads(hashes.path.read_text())
    with file.open("r+b") as handle:
        handle.write(b"b")
    assert FileHashes().sha256(file) == hashlib.sha256(b"b" + b"a" * 999).hexdigest()


def test_a_cache_that_cannot_be_written_only_costs_time(tmp_path, monkeypatch, large_model):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("GRAPE_CACHE_DIR", str(blocker / "cache"))
    assert model_fingerprint(str(large_model)) == model_fingerprint(str(shutil.copytree(large_model, tmp_path / "m")))


def test_a_gguf_file_is_hashed_whole(tmp_path):
    source = EMBEDDED["smollm2-135m-instruct"].gguf_path()
    copied = shutil.copy(source, tmp_path / "model.gguf")
    before = model_fingerprint(str(copied))
    assert before.startswith("gguf:") and before == model_fingerprint(str(source))
    with open(copied, "r+b") as handle:  # one byte at a quarter of the file: in none of the old samples
        handle.seek(copied.stat().st_size // 4)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 1]))
    assert model_fingerprint(str(copied)) != before


def test_a_model_in_memory_is_fingerprinted_by_every_element(tiny_model_dir):
    from grape.models.load import load_model

    loaded = load_model(str(tiny_model_dir), dtype="float32", device="cpu")
    same = copy.deepcopy(loaded)
    assert loaded_fingerprint(same) == loaded_fingerprint(loaded)
    name, tensor = sorted(same.model.state_dict().items())[len(same.model.state_dict()) // 2]
    with torch.no_grad():
        tensor.view(-1)[tensor.numel() // 3] += 1e-3  # one element, far from any strided sample
    assert loaded_fingerprint(same) != loaded_fingerprint(loaded), name


def test_each_fingerprint_says_how_it_was_made(large_model):
    assert "sha256 of every file" in fingerprint_method(model_fingerprint(str(large_model)))
    assert "sha256 of the GGUF file" in fingerprint_method(model_fingerprint("smollm2-135m-instruct"))
    assert "not hashed" in fingerprint_method("hub:org/model")
    assert "every tensor" in fingerprint_method("memory:0123")
    assert fingerprint_method("something else") == "unknown"
