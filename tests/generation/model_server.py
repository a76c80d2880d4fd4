"""A real OpenAI-compatible HTTP server on 127.0.0.1, serving a real (tiny) model through the hf backend.

A helper module, not a conftest.py: a second conftest.py would shadow the root one for
``from conftest import ...``.

Failures are injected by a script: each entry is consumed by one incoming request, before it is
served: an HTTP status (429, 500, 401, ...) or ``("sleep", seconds)`` to make the client time out.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
                    status, payload = self._answer(body, action)
                finally:  # counted out before the answer leaves, so the client's next request cannot overlap
                    with server.lock:
                        server.in_flight -= 1
                try:
                    self._send(status, payload, {"Retry-After": "0"} if status != 200 else None)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def _answer(self, body, action) -> tuple[int, dict]:
                time.sleep(server.delay_s)
                if isinstance(action, tuple) and action[0] == "sleep":
                    time.sleep(action[1])
                elif isinstance(action, int):
                    return action, {"error": {"message": f"injected {action}"}}
                if self.path != "/v1/chat/completions":
                    return 404, {"error": {"message": f"no route {self.path}"}}
                return 200, server.complete(body)

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


@contextmanager
def serving(backend: HFBackend) -> Iterator[ModelServer]:
    """A ModelServer answering on a background thread until the block ends."""
    server = ModelServer(backend)
    thread = threading.Thread(target=server.http.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.http.shutdown()
        server.http.server_close()
