"""The `openai` backend: any OpenAI-compatible chat-completions server (vLLM, SGLang, llama.cpp, hosted APIs).

The server applies the model's own chat template to the messages; a ``.jinja`` template, where given,
renders the one user message instead (it sees the row's fields, as on the other backends).

Stdlib HTTP in a bounded thread pool: at most ``concurrency`` requests in flight, each with a timeout.
429 and 5xx answers, timeouts and dropped connections are retried with exponential backoff (a
``Retry-After`` header is honoured); any other 4xx is a mistake in the settings and stops the run with
the server's own message.
"""

from __future__ import annotations

import json
import os
import random
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any

from grape.errors import GrapeError
from grape.generation.backend import Completion, Request, Sampling
from grape.text.templates import PromptError, PromptTemplate, as_messages

RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}


@dataclass
class HTTPSettings:
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 5
    backoff_s: float = 1.0  # first wait; doubled each retry, with jitter
    max_backoff_s: float = 60.0


class OpenAIBackend:
    def __init__(
        self,
        model: str,
        base_url: str,
        api_key_env: str = "OPENAI_API_KEY",
        http: HTTPSettings | None = None,
        template: str | None = None,
    ):
        if not base_url:
            raise GrapeError(f"openai:{model}: no server: pass --base-url or write openai:{model}@URL")
        self.model, self.base_url, self.api_key_env = model, base_url.rstrip("/"), api_key_env
        self.http = http or HTTPSettings()
        self.template = PromptTemplate(None, template) if template else None  # a .jinja file: the user message
        self.api_key = os.environ.get(api_key_env)  # may be absent: local servers often need none
        self._stop = threading.Event()

    def identity(self) -> dict[str, Any]:
        identity = {"backend": "openai", "model": self.model, "base_url": self.base_url}
        identity["api_key_env"] = self.api_key_env
        return {**identity, "prompt_format": self.template.name} if self.template else identity

    def close(self) -> None:
        self._stop.set()

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[Completion]:
        pending: set[Future] = set()
        queue = iter(requests)
        self._stop.clear()
        with ThreadPoolExecutor(max_workers=max(1, self.http.concurrency)) as pool:
            try:
                for request in queue:  # fill the pool, then refill one per finished request
                    pending.add(pool.submit(self.complete, request, sampling))
                    if len(pending) >= self.http.concurrency:
                        done, pending = wait(pending, return_when=FIRST_COMPLETED)
                        yield from (future.result() for future in done)
                while pending:
                    done, pending = wait(pending, return_when=FIRST_COMPLETED)
                    yield from (future.result() for future in done)
            finally:  # a fatal error (or the caller stopping) cancels what has not started, ends retries
                self._stop.set()
                for future in pending:
                    future.cancel()

    def complete(self, request: Request, sampling: Sampling) -> Completion:
        """One chat completion, retried on transient failures; a failed one carries its error."""
        try:
            prompt = self.template.text(request.prompt, request.fields) if self.template else request.prompt
        except PromptError as exc:
            return Completion(request, None, error=f"template '{self.template.name}': {exc}")
        body = {
            "model": self.model,
            "messages": as_messages(prompt),
            "max_tokens": sampling.max_new_tokens,
            "temperature": max(sampling.temperature, 0.0),
            "top_p": sampling.top_p,
            "seed": request.seed(sampling.seed),
            "n": 1,
        }
        if sampling.stop:
            body["stop"] = sampling.stop
        failure: _Transient | None = None
        for attempt in range(self.http.max_retries + 1):
            if failure is not None:
                self._stop.wait(self.backoff_s(attempt, failure.retry_after))
            if self._stop.is_set():
                return Completion(request, None, error="cancelled")
            try:
                answer = self._post("/chat/completions", body)
            except _Transient as exc:
                failure = exc
                continue
            return _completion(request, answer)
        return Completion(request, None, error=f"gave up after {self.http.max_retries + 1} attempts: {failure}")

    def backoff_s(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (1, 2, ...): the server's Retry-After, else exponential."""
        try:
            return min(max(float(retry_after), 0.0), self.http.max_backoff_s)
        except (TypeError, ValueError):  # absent, or an HTTP date: fall back to our own schedule
            pass
        wait_s = self.http.backoff_s * 2 ** (attempt - 1)
        return min(wait_s * (0.5 + random.random() / 2), self.http.max_backoff_s)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        http_request = urllib.request.Request(
            self.base_url + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        try:
            with urllib.request.urlopen(http_request, timeout=self.http.timeout_s) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as exc:
            message = _server_message(exc)
            if exc.code in RETRIED_STATUS:
                retry_after = exc.headers.get("Retry-After") if exc.headers else None
                raise _Transient(f"HTTP {exc.code}: {message}", retry_after) from exc
            hint = f" (is ${self.api_key_env} set to a valid key?)" if exc.code in (401, 403) else ""
            raise GrapeError(f"{self.base_url}{path}: HTTP {exc.code}: {message}{hint}") from exc
        except (TimeoutError, ConnectionError, urllib.error.URLError, json.JSONDecodeError) as exc:
            reason = getattr(exc, "reason", exc)
            raise _Transient(f"{type(reason).__name__}: {reason}") from exc


class _Transient(Exception):
    """A failure worth retrying: 429, 5xx, a timeout, a dropped connection."""

    def __init__(self, message: str, retry_after: str | None = None):
        super().__init__(message)
        self.retry_after = retry_after


def _server_message(error: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(error.read() or b"{}")
    except (json.JSONDecodeError, OSError):
        return error.reason or ""
    detail = payload.get("error", payload) if isinstance(payload, dict) else payload
    message = detail.get("message") if isinstance(detail, dict) else detail
    return str(message or error.reason)[:300]


def _completion(request: Request, answer: dict[str, Any]) -> Completion:
    try:
        choice = answer["choices"][0]
        text = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return Completion(request, None, error=f"unexpected answer from the server: {str(answer)[:200]}")
    usage = answer.get("usage") or {}
    return Completion(
        request,
        (text or "").strip(),
        n_tokens=usage.get("completion_tokens"),
        finish_reason=choice.get("finish_reason"),
    )
