"""The `vllm` backend: vLLM's offline engine on a GPU (``pip install 'grape-fit[vllm]'``).

vLLM schedules the whole request list itself (continuous batching), so requests go in chunks: a
chunk is the unit that is written to disk, and so what an interrupted run can lose.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from grape.errors import GrapeError
from grape.generation.backend import Completion, Request, Sampling
from grape.generation.prompts import generation_stops, resolve_format
from grape.models.load import resolve_model_dir
from grape.text import PromptError, Renderer


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMBackend:
    def __init__(self, model: str, prompt_format: str = "auto", chunk_size: int = 512, **engine_options: Any):
        if not vllm_available():
            raise GrapeError("the vllm backend needs vLLM (a GPU machine): pip install 'grape-fit[vllm]'")
        from vllm import LLM

        target, self.model_identity = resolve_model_dir(model)  # embedded aliases and GGUF files work too
        self.llm = LLM(model=target, **engine_options)
        self.tokenizer = self.llm.get_tokenizer()
        self.prompt_format = resolve_format(prompt_format, self.tokenizer)
        self.renderer = Renderer(self.tokenizer, self.prompt_format, eos=False)
        self.chunk_size = max(1, chunk_size)

    def identity(self) -> dict[str, Any]:
        return {"backend": "vllm", "prompt_format": self.prompt_format, "model": self.model_identity}

    def close(self) -> None:
        self.llm = None

    def generate(self, requests: list[Request], sampling: Sampling) -> Iterator[Completion]:
        from vllm import SamplingParams

        stops = generation_stops(self.prompt_format, sampling.stop)
        for start in range(0, len(requests), self.chunk_size):
            chunk, prompts = [], []
            for request in requests[start : start + self.chunk_size]:
                try:  # grape's ids, not vLLM's own rendering: the prompt the candidates are later scored after
                    prompts.append({"prompt_token_ids": self.renderer.generation_ids(request.prompt, request.fields)})
                    chunk.append(request)
                except PromptError as exc:  # this row's prompt cannot be rendered
                    yield Completion(request, None, error=f"prompt format '{self.prompt_format}': {exc}")
            if not chunk:
                continue
            params = [
                SamplingParams(
                    n=1,
                    temperature=max(sampling.temperature, 0.0),
                    top_p=sampling.top_p,
                    max_tokens=sampling.max_new_tokens,
                    seed=r.seed(sampling.seed),
                    stop=stops or None,
                )
                for r in chunk
            ]
            outputs = self.llm.generate(prompts, params, use_tqdm=False)
            for request, output in zip(chunk, outputs, strict=True):
                best = output.outputs[0]
                yield Completion(request, best.text.strip(), len(best.token_ids), best.finish_reason)
