"""A Hub id where the Hub cannot be reached: loaded from the local cache, or refused at once with a "did you mean",
instead of ~50 seconds of the Hub client's retries. The reachability probe is asked of real sockets on loopback."""

from __future__ import annotations

import shutil
import socket
import time

import pytest
from huggingface_hub import constants

from grape.errors import GrapeError
from grape.models import hub_reach
from grape.models.hub_reach import hub_reachable
from grape.models.load import load_model, resolve_model_dir


@pytest.fixture
def probe(monkeypatch):
    """hub_reachable asked afresh, with no proxy and the Hub client online unless a test says otherwise."""
    for name in hub_reach.PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    hub_reachable.cache_clear()
    yield monkeypatch
    hub_reachable.cache_clear()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_probe_asks_the_endpoint_once_per_process(probe):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub_reachable()
    probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    assert hub_reachable()  # the answer of this process's first question
    hub_reachable.cache_clear()
    assert not hub_reachable()


def test_offline_mode_and_proxies_are_respected(probe):
    probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    probe.setenv("HTTPS_PROXY", "http://127.0.0.1:3128")
    assert hub_reachable()  # only the proxy knows: the Hub client asks it
    hub_reachable.cache_clear()
    probe.delenv("HTTPS_PROXY")
    probe.setattr(constants, "HF_HUB_OFFLINE", True)
    assert not hub_reachable()


def _cache_with(model_dir, cache, repo: str) -> None:
    """The Hugging Face cache's own layout for ``repo`` at one commit: refs/main and the snapshot's files."""
    entry = cache / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (entry / "refs").mkdir(parents=True)
    (entry / "refs" / "main").write_text(commit)
    shutil.copytree(model_dir, entry / "snapshots" / commit)


def test_unreachable_hub_loads_a_cached_model_from_its_snapshot(probe, tiny_smol_dir, tmp_path):
    probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    probe.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    _cache_with(tiny_smol_dir, tmp_path / "hub", "someone/tiny-smol")
    target, identity = resolve_model_dir("someone/tiny-smol")
    assert identity == {"spec": "someone/tiny-smol", "kind": "hub"}
    assert target.endswith("snapshots/0123456789abcdef0123456789abcdef01234567")
    loaded = load_model("someone/tiny-smol", dtype="float32", device="cpu")
    assert loaded.model.config.vocab_size == len(loaded.tokenizer)


def test_unreachable_hub_refuses_an_uncached_id_at_once_with_a_guess(probe, tmp_path):
    probe.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    probe.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    started = time.perf_counter()
    with pytest.raises(GrapeError, match=r"^gemma3-270m: not a model directory.*out of reach; did you mean "
                                         r"gemma-3-270m\?$"):  # fmt: skip
        load_model("gemma3-270m", device="cpu")
    assert time.perf_counter() - started < 20  # the Hub client's retries took ~48 s here
    probe.setattr(constants, "HF_HUB_OFFLINE", True)
    hub_reachable.cache_clear()
    with pytest.raises(GrapeError, match=r"^org/unknown: .*while HF_HUB_OFFLINE is set; the embedded models: "):
        resolve_model_dir("org/unknown")
