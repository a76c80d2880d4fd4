"""Parsing --model values, input checks, and the optional vllm backend."""

from __future__ import annotations

import json

import pytest

from grape.errors import GrapeError, InputError
from grape.generation.backend import GeneratorSpec, Request
from grape.generation.generate import generate
from grape.generation.prompts import cut_at_stop
from grape.generation.settings import GenerateSettings
from grape.generation.vllm_backend import VLLMBackend, vllm_available


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("smollm2-135m-instruct", ("smollm2-135m-instruct", "hf", "smollm2-135m-instruct", None)),
        ("small=hf:./models/my-model/", ("small", "hf", "./models/my-model/", None)),
        ("/data/gemma.gguf", ("gemma", "hf", "/data/gemma.gguf", None)),
        ("openai:gpt-4o-mini@https://api.example.com/v1", ("gpt-4o-mini", "openai", "gpt-4o-mini",
                                                           "https://api.example.com/v1")),
        ("big=openai:Qwen/Qwen2.5-7B", ("big", "openai", "Qwen/Qwen2.5-7B", None)),
        ("vllm:Qwen/Qwen2.5-0.5B-Instruct", ("Qwen2.5-0.5B-Instruct", "vllm", "Qwen/Qwen2.5-0.5B-Instruct", None)),
    ],
)  # fmt: skip
def test_generator_specs(spec, expected):
    parsed = GeneratorSpec.parse(spec)
    assert (parsed.name, parsed.backend, parsed.model, parsed.base_url) == expected


def test_request_seeds_depend_on_instruction_and_sample_only():
    a, b = Request("x", 0, "p"), Request("x", 1, "p")
    assert a.seed(0) == Request("x", 0, "other prompt").seed(0)
    assert len({a.seed(0), b.seed(0), a.seed(1)}) == 3


def test_cut_at_the_first_stop_string():
    assert cut_at_stop("42.\nQuestion: next", ["\nQuestion:", "\n\n\n"]) == ("42.", True)
    assert cut_at_stop("no stop here", ["\nQuestion:"]) == ("no stop here", False)


def test_user_mistakes_are_one_line_errors(tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text(json.dumps({"id": "a", "prompt": "x"}) + "\n" + json.dumps({"id": "a", "prompt": "y"}) + "\n")
    settings = GenerateSettings(models=["openai:m@http://127.0.0.1:9/v1"])
    with pytest.raises(InputError, match=r"row 2: duplicate id \(first seen in row 1\)"):
        generate(source, tmp_path / "out.jsonl", settings)
    with pytest.raises(GrapeError, match="share a name"):
        generate(source, tmp_path / "out.jsonl", GenerateSettings(models=["m", "x=m", "openai:m@u"]))
    with pytest.raises(GrapeError, match="no generator"):
        generate(source, tmp_path / "out.jsonl", GenerateSettings())


def test_an_output_with_other_instructions_is_not_overwritten(tmp_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": "a", "prompt": "x"}) + "\n")
    out.write_text(json.dumps({"id": "z", "prompt": "x", "candidates": []}) + "\n")
    with pytest.raises(GrapeError, match="holds other instructions"):
        generate(source, out, GenerateSettings(models=["openai:m@http://127.0.0.1:9/v1"]))


@pytest.mark.skipif(vllm_available(), reason="vLLM is installed here")
def test_vllm_backend_says_how_to_get_vllm_when_absent():
    with pytest.raises(GrapeError, match=r"pip install 'grape-fit\[vllm\]'"):
        VLLMBackend("smollm2-135m-instruct")


def test_vllm_backend_generates_when_present():
    pytest.importorskip("vllm", reason="vLLM is an optional extra (a GPU machine)")
    from grape.generation.backend import Sampling

    backend = VLLMBackend("smollm2-135m-instruct", gpu_memory_utilization=0.3)
    (done,) = backend.generate([Request("a", 0, "Name a colour.")], Sampling(max_new_tokens=8))
    assert done.text and done.n_tokens <= 8
