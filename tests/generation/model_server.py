"""A real OpenAI-compatible HTTP server on 127.0.0.1, serving a real (tiny) model through the hf backend.

Failures are injected by a script: each entry is consumed by one incoming request, before it is
served: an HTTP status (429, 500, 401, ...) or ``("sleep", seconds)`` to make the client time out.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from grape.generation.backend import Request, Sampling
from grape.generation.hf_backend import HFBackend


class ModelServer:
    def __init__(self, backend: HFBackend):
        self.backend = backend
        self.script: list = []
        self.received: list[dict] = []  # every request body, failed ones included
        self.headers: list[dict] = []
        self.delay_s = 0.0
        self.in_flight = self.max_in_flight = 0
        self.lock, self.model_lock = threading.Lock(), threading.Lock()
        self.http = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"

    def reset(self) -> None:
        deadline = time.monotonic() + 5
        while self.in_flight and time.monotonic() < deadline:  # a request the last test walked away from
            time.sleep(0.05)
        self.script, self.received, self.headers, self.delay_s = [], [], [], 0.0
        self.max_in_flight = 0

    def complete(self, body: dict) -> dict:
        messages = body["messages"]
        sampling = Sampling(temperature=body.get("temperature", 1.0), max_new_tokens=body.get("max_tokens", 16),
                            seed=body.get("seed", 0), stop=body.get("stop") or [])  # fmt: skip
        with self.model_lock:  # one generate() at a time on the shared model
            (done,) = self.backend.generate([Request("r", 0, messages)], sampling)
        return {
            "object": "chat.completion",
            "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": done.text},
                         "finish_reason": done.finish_reason}],
            "usage": {"completion_tokens": done.n_tokens},
        }  # fmt: skip

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep the test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server.lock:
                    server.received.append(body)
                    server.headers.append(dict(self.headers))
                    action = server.script.pop(0) if server.script else None
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    self._serve(body, action)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left
                finally:
                    with server.lock:
                        server.in_flight -= 1

            def _serve(self, body, action):
                time.sleep(server.delay_s)
                if isinstance(action, tuple) and action[0] == "sleep":
                    time.sleep(action[1])
                elif isinstance(action, int):
                    return self._send(action, {"error": {"message": f"injected {action}"}}, {"Retry-After": "0"})
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": f"no route {self.path}"}})
                self._send(200, server.complete(body))

            def _send(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir):
    """The tiny random Gemma 3 with the real Gemma tokenizer (no chat template: the few-shot prefix)."""
    return HFBackend(str(tiny_model_dir), dtype="float32", device="cpu", batch_size=8)


@pytest.fixture(scope="session")
def _running_server(tiny_backend):
    server = ModelServer(tiny_backend)
    thread = threading.Thread(target=server.http.serve_forever, daemon=True)
    thread.start()
    yield server
    server.http.shutdown()
    server.http.server_close()


@pytest.fixture
def model_server(_running_server):
    _running_server.reset()
    return _running_server
