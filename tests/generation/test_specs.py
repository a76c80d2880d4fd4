"""Parsing --model values (strings and mappings), the command line's settings, input checks, and the optional
vllm backend."""

from __future__ import annotations

import json

import pytest

from grape.cli import build_parser
from grape.errors import GrapeError, InputError
from grape.generation.backend import GeneratorSpec, Request, Sampling
from grape.generation.cli import generate_settings
from grape.generation.generate import generate
from grape.generation.prompts import cut_at_stop
from grape.generation.settings import GenerateSettings
from grape.generation.vllm_backend import VLLMBackend, vllm_available
from grape.generation.work import generator_specs


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
    with pytest.raises(InputError, match=r"row 2, field 'id': duplicate id \(first seen in row 1\)"):
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


def test_a_generator_mapping_carries_its_own_template_and_sampling():
    spec = GeneratorSpec.parse({"name": "self", "model": "hf:smollm2-135m-instruct", "template": "chat",
                                "sampling": {"temperature": 0, "n": 1}})  # fmt: skip
    assert (spec.name, spec.backend, spec.model, spec.template) == ("self", "hf", "smollm2-135m-instruct", "chat")
    shared = Sampling(n=4, temperature=0.7, max_new_tokens=64, seed=3)
    assert spec.sampling_over(shared) == Sampling(n=1, temperature=0.0, max_new_tokens=64, seed=3)
    assert GeneratorSpec.parse({"model": "openai:m@http://h/v1"}).name == "m"  # the name defaults as in a string
    plain = GeneratorSpec.parse("smollm2-135m-instruct")
    assert (plain.template, plain.sampling_over(shared)) == (None, shared)


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"name": "x", "model": "m", "temprature": 0}, r"unknown key\(s\) temprature; a generator has name, model"),
        ({"name": "x"}, "`model` must name a model"),
        ({"model": "m", "template": ""}, "`template` must be a non-empty string"),
        ({"model": "m", "sampling": {"temprature": 0}}, r"sampling: unknown setting\(s\) temprature"),
        ({"model": "m", "sampling": {"n": "two"}}, "sampling: n: expected int"),
        ({"model": "m", "sampling": 0.5}, "`sampling` must be a mapping"),
        (
            {"model": "m", "sampling": {"temperature": -1}},
            r"sampling: temperature must be 0 or more \(0: greedy\), not -1",
        ),
        ({"model": "m", "sampling": {"top_p": 2}}, "sampling: top_p must be above 0 and at most 1, not 2"),
        (3, "expected a string or a mapping"),
    ],
)
def test_a_wrong_generator_mapping_is_a_one_line_error(entry, message):
    with pytest.raises(GrapeError, match=message):
        GeneratorSpec.parse(entry)


def test_generators_are_checked_before_any_model_loads(tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("{{ instruction }}")
    openai = "openai:m@http://127.0.0.1:9/v1"
    fine = GenerateSettings(models=[{"name": "a", "model": openai, "template": str(template)}])
    assert [s.name for s in generator_specs(fine)] == ["a"]  # a .jinja file renders an openai user message
    wrong = [
        ({"models": [{"model": "m", "template": "nope.jinja"}]}, "generator m: unknown prompt format 'nope.jinja'"),
        ({"models": [{"model": openai, "template": "paper"}]}, "an openai server applies its own chat template"),
        ({"models": [{"model": "m", "sampling": {"n": 0}}]}, "m: -n must be at least 1"),
        ({"models": ["m"], "prompt_format": "nope"}, "unknown prompt format 'nope'"),
        ({"models": ["m"], "limit": 0}, "--limit must be at least 1"),
    ]
    for fields, message in wrong:
        with pytest.raises(GrapeError, match=message):
            generator_specs(GenerateSettings(**fields))


def test_template_is_the_flag_and_prompt_format_its_alias_and_the_settings_key(tmp_path):
    parser = build_parser()
    base = ["generate", "p.jsonl", "-o", "x.jsonl", "--model", "m"]
    for flag in ("--template", "--prompt-format"):
        assert generate_settings(parser.parse_args([*base, flag, "paper"])).prompt_format == "paper"
    config = tmp_path / "g.yaml"
    config.write_text("prompt_format: raw\nlimit: 5\nreference_field: answer\n")
    settings = generate_settings(parser.parse_args([*base, "--config", str(config)]))
    assert (settings.prompt_format, settings.limit, settings.reference_field) == ("raw", 5, "answer")
    settings = generate_settings(parser.parse_args([*base, "--config", str(config), "--template", "chat",
                                                    "--limit", "2"]))  # fmt: skip
    assert (settings.prompt_format, settings.limit) == ("chat", 2)


def test_a_model_flag_takes_a_yaml_mapping_as_a_config_file_does(tmp_path, capsys):
    args = build_parser().parse_args(["generate", "p.jsonl", "-o", "x.jsonl", "--model", "a=smollm2-135m-instruct",
                                      "--model", "{name: self, model: m, sampling: {temperature: 0}}"])  # fmt: skip
    assert generate_settings(args).models == [
        "a=smollm2-135m-instruct", {"name": "self", "model": "m", "sampling": {"temperature": 0}}
    ]  # fmt: skip
    config = tmp_path / "g.yaml"
    config.write_text("models:\n  - {name: self, model: m, template: chat}\n  - plain-model\n")
    args = build_parser().parse_args(["generate", "p.jsonl", "-o", "x.jsonl", "--config", str(config)])
    assert generate_settings(args).models == [{"name": "self", "model": "m", "template": "chat"}, "plain-model"]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["generate", "p.jsonl", "-o", "x.jsonl", "--model", "{name: [unclosed"])
    assert "not a YAML mapping" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--temperature", "-1"], "argument --temperature: must be 0 or more, not -1"),
        (["--temperature", "nan"], "argument --temperature: must be a finite number, not nan"),
        (["--top-p", "2"], "argument --top-p: must be above 0 and at most 1, not 2"),
        (["--top-p", "0"], "argument --top-p: must be above 0 and at most 1, not 0"),
        (["--timeout", "-1"], "argument --timeout: must be above 0, not -1"),
        (["--timeout", "0"], "argument --timeout: must be above 0, not 0"),
    ],
)
def test_sampling_and_timeout_flags_out_of_range_are_usage_errors(capsys, flags, message):
    """They used to be taken: -1 sampled greedily, top-p 2 and a negative timeout failed only at the first request."""
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["generate", "p.jsonl", "-o", "x.jsonl", "--model", "m", *flags])
    assert refused.value.code == 2 and message in capsys.readouterr().err


def test_sampling_and_timeout_flags_keep_their_defaults_and_their_edges():
    base = ["generate", "p.jsonl", "-o", "x.jsonl", "--model", "m"]
    settings = generate_settings(build_parser().parse_args(base))
    assert (settings.sampling.temperature, settings.sampling.top_p, settings.http.timeout_s) == (0.7, 1.0, 120.0)
    edges = ["--temperature", "0", "--top-p", "1", "--timeout", "0.5"]
    settings = generate_settings(build_parser().parse_args([*base, *edges]))
    assert (settings.sampling.temperature, settings.sampling.top_p, settings.http.timeout_s) == (0.0, 1.0, 0.5)


def test_a_config_files_sampling_out_of_range_is_a_one_line_error(tmp_path, capsys):
    """The flags were checked (argparse), a --config file's `temperature: -1` went through as greedy."""
    from grape.cli import main

    config = tmp_path / "c.yaml"
    config.write_text("sampling:\n  temperature: -1\n")
    code = main(["generate", "p.jsonl", "-o", str(tmp_path / "x.jsonl"), "--model", "m", "--config", str(config)])
    assert code == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "temperature must be 0 or more (0: greedy), not -1" in err and "Traceback" not in err
