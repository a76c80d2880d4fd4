"""The `hf` backend: a transformers model on CPU or GPU, batched generation with left padding.

Requests are sorted by prompt length so that a batch pads little; each batch is seeded from its first
request, so a re-run with the same batches gives the same samples.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import torch
from transformers import StoppingCriteriaList, StopStringCriteria

from grape.errors import GrapeError
from grape.generation.backend import Completion, Request, Sampling, check_batching
from grape.generation.continuous import continuous_greedy, supports_continuous
from grape.generation.prompts import cut_at_stop, generation_stops, resolve_format
from grape.models.load import LoadedModel, load_model
from grape.text import PromptError, Renderer


class HFBackend:
    def __init__(
        self,
        model: str | LoadedModel,
        prompt_format: str = "auto",
        batch_size: int = 16,
        dtype: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        batching: str = "static",
    ):
        check_batching(batching)
        self.loaded = model if isinstance(model, LoadedModel) else load_model(model, dtype, device, trust_remote_code)
        # greedy requests only: sampled ones always go in static batches (seeded per batch)
        self.continuous = batching == "continuous" or (
            batching == "auto" and self.loaded.device.type == "cpu" and supports_continuous(self.loaded.model)
        )
        self.tokenizer = self.loaded.tokenizer
        self.prompt_format = resolve_format(prompt_format, self.tokenizer)
        self.renderer = Renderer(self.tokenizer, self.prompt_format, eos=False)
        self.batch_size = max(1, batch_size)
        self._criteria: dict[tuple[str, ...], StopStringCriteria] = {}
        # Left padding keeps every prompt's last token at the end of the row, where generation continues.
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id

    def identity(self) -> dict[str, Any]:
        return {"backend": "hf", "prompt_format": self.prompt_format, "model": self.loaded.identity}

    def close(self) -> None:
        self.loaded = None

    def prompt_ids(self, prompt: Any, fields: Mapping[str, Any] | None = None) -> list[int]:
        try:
            return self.renderer.generation_ids(prompt, fields)
        except PromptError as exc:
            raise GrapeError(f"prompt format '{self.prompt_format}': {exc}") from exc

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[Completion]:
        encoded = []
        for request in requests:
            try:
                encoded.append((request, self.prompt_ids(request.prompt, request.fields)))
            except GrapeError as exc:  # this row's prompt cannot be rendered (e.g. it lacks a field the template uses)
                yield Completion(request, None, error=str(exc))
        encoded.sort(key=lambda pair: -len(pair[1]))  # longest first: a later prompt seldom widens the cache
        stops = generation_stops(self.prompt_format, sampling.stop)
        if sampling.greedy and self.continuous:
            yield from self._generate_continuous(encoded, sampling, stops)
            return
        for start in range(0, len(encoded), self.batch_size):
            batch = encoded[start : start + self.batch_size]
            yield from self._generate_batch(batch, sampling, stops)

    @torch.inference_mode()
    def _generate_batch(self, batch: list[tuple[Request, list[int]]], sampling: Sampling, stops: list[str]):
        model = self.loaded.model
        width = max(len(ids) for _, ids in batch)
        input_ids = torch.tensor([[self.pad_id] * (width - len(ids)) + ids for _, ids in batch])
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for _, ids in batch])
        options: dict[str, Any] = {"do_sample": not sampling.greedy, "max_new_tokens": sampling.max_new_tokens}
        if not sampling.greedy:
            options.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=0)
            torch.manual_seed(batch[0][0].seed(sampling.seed))
        if stops:
            options["stopping_criteria"] = StoppingCriteriaList([self._stop_criteria(tuple(stops))])
        output = model.generate(
            input_ids=input_ids.to(model.device),
            attention_mask=mask.to(model.device),
            pad_token_id=self.pad_id,
            **options,
        )
        eos_ids = _eos_ids(model, self.tokenizer)
        for (request, _), row in zip(batch, output[:, width:].tolist(), strict=True):
            yield self._completion(request, row, eos_ids, stops, sampling.max_new_tokens)

    def _generate_continuous(self, encoded: list[tuple[Request, list[int]]], sampling: Sampling, stops: list[str]):
        """Greedy answers with continuous batching (``batch_size`` slots), yielded as they finish."""
        model = self.loaded.model
        if not supports_continuous(model):
            raise GrapeError(f"batching 'continuous': {type(model).__name__}'s KV cache has sliding-window layers; "
                             "use batching static")  # fmt: skip
        eos_ids = _eos_ids(model, self.tokenizer)

        def stopped(tokens: list[int]) -> bool:
            return cut_at_stop(self.tokenizer.decode(tokens, skip_special_tokens=True), stops)[1]

        answers = continuous_greedy(model, [ids for _, ids in encoded], sampling.max_new_tokens, eos_ids, self.pad_id,
                                    self.batch_size, stopped if stops else None)  # fmt: skip
        for index, tokens, _ in answers:
            yield self._completion(encoded[index][0], tokens, eos_ids, stops, sampling.max_new_tokens)

    def _stop_criteria(self, stops: tuple[str, ...]) -> StopStringCriteria:
        """Built once per stop set: it walks the whole vocabulary (2 s for Gemma's 262k tokens on a CPU)."""
        if stops not in self._criteria:
            self._criteria[stops] = StopStringCriteria(self.tokenizer, list(stops))
        return self._criteria[stops]

    def _completion(self, request: Request, row: list[int], eos_ids: set[int], stops: list[str], limit: int):
        end = next((i for i, t in enumerate(row) if t in eos_ids or t == self.pad_id), len(row))
        text = self.tokenizer.decode(row[:end], skip_special_tokens=True)
        text, stopped = cut_at_stop(text, stops)
        reason = "stop" if stopped or end < len(row) else ("length" if end >= limit else "stop")
        return Completion(request, text.strip(), n_tokens=end, finish_reason=reason)


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """Every token that ends a turn: the tokenizer's EOS and the generation config's (e.g. <end_of_turn>)."""
    ids = {tokenizer.eos_token_id}
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids.update(configured if isinstance(configured, list) else [configured])
    return {i for i in ids if i is not None}
