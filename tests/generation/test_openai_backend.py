"""The `openai` backend against a real HTTP server on 127.0.0.1: requests, retries, timeouts, errors, resume."""

from __future__ import annotations

import json
import time

import pytest
from model_server import serving

from grape.cli import main
from grape.errors import GrapeError
from grape.generation.backend import Request, Sampling
from grape.generation.generate import generate
from grape.generation.hf_backend import HFBackend
from grape.generation.openai_backend import HTTPSettings, OpenAIBackend
from grape.generation.settings import GenerateSettings

PROMPTS = [
    {"id": "a", "prompt": "Name a colour.", "candidates": [{"text": "Blue.", "source": "reference"}]},
    {"id": "b", "prompt": "What is 2 + 3?", "candidates": [{"text": "5", "source": "reference"}]},
    {"id": "c", "prompt": "Say hello.", "candidates": []},
]
FAST = HTTPSettings(concurrency=4, timeout_s=5.0, max_retries=3, backoff_s=0.01)


@pytest.fixture(scope="module")
def _server(tiny_model_dir):
    """The tiny random Gemma 3 with the real Gemma tokenizer, served on 127.0.0.1."""
    with serving(HFBackend(str(tiny_model_dir), dtype="float32", device="cpu")) as server:
        yield server


@pytest.fixture
def model_server(_server):
    _server.reset()
    return _server


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _settings(server, n=1, http=FAST, **sampling):
    return GenerateSettings(
        models=[f"tiny=openai:tiny-model@{server.url}"],
        sampling=Sampling(n=n, temperature=0.8, max_new_tokens=6, seed=3, **sampling),
        api_key_env="GRAPE_TEST_KEY",
        http=http,
    )


def test_generates_every_sample_through_the_server(model_server, tmp_path, monkeypatch):
    monkeypatch.setenv("GRAPE_TEST_KEY", "sk-test-123")
    out = tmp_path / "pool.jsonl"
    rows, (report,) = generate(_write(tmp_path / "in.jsonl", PROMPTS), out, _settings(model_server, n=2))
    assert (report.generated, report.failed, report.existing) == (6, 0, 0)
    for row in rows:
        new = [c for c in row["candidates"] if c["source"] == "tiny"]
        assert sorted(c["sample"] for c in new) == [0, 1]
        assert all(isinstance(c["text"], str) and 1 <= c["n_tokens"] <= 6 for c in new)
    assert [c["source"] for c in rows[0]["candidates"]] == ["reference", "tiny", "tiny"]
    assert {b["model"] for b in model_server.received} == {"tiny-model"}
    assert {b["max_tokens"] for b in model_server.received} == {6}
    assert len({b["seed"] for b in model_server.received}) == 6  # each sample has a seed of its own
    assert {h["Authorization"] for h in model_server.headers} == {"Bearer sk-test-123"}
    meta = json.loads((tmp_path / "pool.jsonl.meta.json").read_text())
    assert meta["generators"]["tiny"]["base_url"] == model_server.url
    assert meta["generators"]["tiny"]["sampling"]["temperature"] == 0.8


def test_retries_429_and_5xx_then_succeeds(model_server):
    model_server.script = [429, 500, 503]
    backend = OpenAIBackend("tiny-model", model_server.url, http=FAST)
    done = backend.complete(Request("a", 0, "Name a colour."), Sampling(max_new_tokens=4))
    assert done.error is None and isinstance(done.text, str)
    assert len(model_server.received) == 4  # three injected failures, then the answer


def test_a_timeout_is_retried(model_server):
    model_server.script = [("sleep", 1.5)]
    backend = OpenAIBackend("tiny-model", model_server.url, http=HTTPSettings(timeout_s=0.5, backoff_s=0.01))
    started = time.monotonic()
    done = backend.complete(Request("a", 0, "Name a colour."), Sampling(max_new_tokens=4))
    assert done.error is None and isinstance(done.text, str)
    assert len(model_server.received) == 2
    assert time.monotonic() - started < 5


def test_backoff_doubles_and_honours_retry_after():
    backend = OpenAIBackend("m", "http://127.0.0.1:9", http=HTTPSettings(backoff_s=1.0, max_backoff_s=6.0))
    assert 0.5 <= backend.backoff_s(1) <= 1.0
    assert 2.0 <= backend.backoff_s(3) <= 4.0
    assert backend.backoff_s(10) <= 6.0
    assert backend.backoff_s(1, retry_after="2.5") == 2.5


@pytest.mark.parametrize(("status", "expected"), [(401, r"HTTP 401: injected 401 \(is \$GRAPE_TEST_KEY set"),
                                                  (400, "HTTP 400: injected 400$")])  # fmt: skip
def test_client_errors_stop_with_the_servers_message(model_server, status, expected):
    model_server.script = [status]
    backend = OpenAIBackend("tiny-model", model_server.url, api_key_env="GRAPE_TEST_KEY", http=FAST)
    with pytest.raises(GrapeError, match=expected):
        list(backend.generate([Request("a", 0, "hi")], Sampling(max_new_tokens=4)))
    assert len(model_server.received) == 1  # a 4xx is not retried


def test_a_request_that_keeps_failing_is_reported_and_a_rerun_fills_it_in(model_server, tmp_path):
    source, out = _write(tmp_path / "in.jsonl", PROMPTS[:2]), tmp_path / "pool.jsonl"
    model_server.script = [500, 500]  # the first request fails twice: more than max_retries=1 allows
    http = HTTPSettings(concurrency=1, max_retries=1, backoff_s=0.01)
    rows, (report,) = generate(source, out, _settings(model_server, http=http))
    assert (report.generated, report.failed) == (1, 1)
    assert "gave up after 2 attempts: HTTP 500: injected 500" in report.errors[0]
    assert sum(c["source"] == "tiny" for r in rows for c in r["candidates"]) == 1
    received = len(model_server.received)
    rows, (report,) = generate(source, out, _settings(model_server, http=http))
    assert (report.generated, report.existing, report.failed) == (1, 1, 0)
    assert len(model_server.received) == received + 1  # only the missing sample was asked for
    assert all(sum(c["source"] == "tiny" for c in r["candidates"]) == 1 for r in rows)


def test_concurrency_is_bounded(model_server):
    model_server.delay_s = 0.2
    backend = OpenAIBackend("tiny-model", model_server.url, http=HTTPSettings(concurrency=3, backoff_s=0.01))
    requests = [Request(f"p{i}", 0, f"Count to {i}.") for i in range(9)]
    done = list(backend.generate(requests, Sampling(max_new_tokens=2)))
    assert sorted(c.request.id for c in done) == sorted(r.id for r in requests)
    assert model_server.max_in_flight == 3


def test_cli_generate_with_the_openai_backend(model_server, tmp_path):
    source = tmp_path / "prompts.txt"
    source.write_text("Name a colour.\nWhat is 2 + 3?\n")
    out = tmp_path / "pool.jsonl"
    code = main(["generate", str(source), "-o", str(out), "--model", f"openai:tiny-model@{model_server.url}",
                 "-n", "2", "--max-new-tokens", "4", "--temperature", "0.5"])  # fmt: skip
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["prompt"] for r in rows] == ["Name a colour.", "What is 2 + 3?"]
    assert [[c["source"] for c in r["candidates"]] for r in rows] == [["tiny-model"] * 2] * 2
    assert not (tmp_path / "pool.jsonl.journal.jsonl").exists()


def test_a_jinja_template_renders_the_user_message_sent_to_the_server(model_server, tmp_path):
    template = tmp_path / "para.jinja"
    template.write_text("Rewrite in your own words: {{ answer }}\n(question: {{ instruction }})")
    rows = [{"id": "a", "prompt": "2 + 3?", "answer": "2 + 3 = 5"}, {"id": "b", "prompt": "No gold."}]
    generator = {"name": "para", "model": f"openai:tiny-model@{model_server.url}", "template": str(template),
                 "sampling": {"temperature": 0}}  # fmt: skip
    patient = HTTPSettings(concurrency=1, timeout_s=300.0, max_retries=1, backoff_s=0.01)  # a busy machine
    settings = GenerateSettings(models=[generator], sampling=Sampling(max_new_tokens=4), http=patient)
    out = tmp_path / "pool.jsonl"
    _, (report,) = generate(_write(tmp_path / "in.jsonl", rows), out, settings)
    assert (report.generated, report.failed) == (1, 1) and "'answer' is undefined" in report.errors[0]
    # the row without an answer was never sent
    expected = [{"role": "user", "content": "Rewrite in your own words: 2 + 3 = 5\n(question: 2 + 3?)"}]
    assert [b["messages"] for b in model_server.received] == [expected]
    assert model_server.received[0]["temperature"] == 0.0
    assert json.loads((tmp_path / "pool.jsonl.meta.json").read_text())["generators"]["para"]["prompt_format"] == str(
        template
    )
