"""`grape generate`: the command-line face of grape.generation.generate."""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import yaml

from grape.cli_options import (
    add_config_option,
    add_input_options,
    non_negative_float,
    positive_float,
    positive_int,
    probability,
    settings_from_args,
    table_output,
)
from grape.console import console, print_table
from grape.data.tables import read_sidecar
from grape.generation.backend import BATCHING, GENERATOR_KEYS, Sampling
from grape.generation.generate import generate, summary_rows
from grape.generation.openai_backend import HTTPSettings
from grape.generation.prompts import PROMPT_FORMATS
from grape.generation.settings import GenerateSettings
from grape.models.dtypes import ACCEPTED
from grape.models.embedded import EMBEDDED

if TYPE_CHECKING:
    from grape.generation.dry_run import GenerationPlan

# GenerateSettings fields with a flag; the sampling and HTTP flags fill its nested `sampling:` and `http:`.
FLAGS = ("models", "prompt_format", "batch_size", "batching", "dtype", "device", "trust_remote_code", "base_url",
         "api_key_env", "on_error", "layout", "columns", "split", "subset", "revision", "reference_field",
         "limit")  # fmt: skip
EXAMPLES = """examples:
  grape generate prompts.jsonl -o pool.jsonl -n 2 --model smollm2-135m-instruct --model gemma-3-270m
  grape generate train.jsonl -o pool.jsonl --limit 16 --reference-field answer \\
      --model '{name: self, model: smollm2-135m-instruct, template: chat, sampling: {temperature: 0}}' \\
      --model '{name: paraphrase, model: smollm2-135m-instruct, template: examples/s3ft_paraphrase.jinja}'
  grape generate train.jsonl -o pool.jsonl --model smollm2-135m-instruct --dry-run"""
SAMPLING_FLAGS = ("n", "temperature", "top_p", "max_new_tokens", "seed", "stop")
HTTP_FLAGS = {"concurrency": "concurrency", "timeout": "timeout_s", "max_retries": "max_retries"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="sample candidate responses from one or more models",
        description="Sample N responses per instruction from each generator and add them to the candidate pool "
        "(grouped layout, source = the generator's name). Resumable: a re-run skips every (instruction, "
        "generator, sample) already in the output, and an output of the input's first rows (--limit) is extended. "
        "Settings: defaults < --config YAML < flags.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("input", help="prompts (.jsonl/.parquet rows, or a .txt with one per line), or a "
                        "grouped/long file with candidates (new ones are added)")  # fmt: skip
    parser.add_argument(
        "-o", "--output", required=True, type=table_output, help="the candidate pool: .jsonl (or .parquet)"
    )
    add_config_option(parser)
    parser.add_argument(
        "--model", action="append", metavar="SPEC", dest="models", type=generator_value,
        help="a generator, repeatable: [NAME=][BACKEND:]MODEL[@BASE_URL]. BACKEND is hf (default: a local "
        f"directory, .gguf, Hub id or embedded alias: {', '.join(EMBEDDED)}), openai (an OpenAI-compatible "
        "server) or vllm. NAME (the candidates' source) defaults to the model's name. A generator with its own "
        "template and sampling is a YAML mapping, as in a --config file: '{name: self, model: MODEL, "
        "template: chat, sampling: {temperature: 0}}'",
    )  # fmt: skip
    defaults = Sampling()
    parser.add_argument("-n", type=int, help="samples per instruction and generator. Default: 1")
    parser.add_argument("--temperature", type=non_negative_float, help=f"0 = greedy. Default: {defaults.temperature}")
    parser.add_argument("--top-p", type=probability, help=f"Default: {defaults.top_p}")
    parser.add_argument("--max-new-tokens", type=positive_int, help=f"Default: {defaults.max_new_tokens}")
    parser.add_argument("--seed", type=int, help="Default: 0")
    parser.add_argument("--stop", action="append", help="a stop string (repeatable)")
    parser.add_argument(
        "--template", "--prompt-format", dest="prompt_format", metavar="|".join(PROMPT_FORMATS),
        help="the template of every generator without its own. hf/vllm: auto = the chat template where the model "
        "has one, else a few-shot Question:/Answer: prefix (base models); paper, chat, raw, or a .jinja file as in "
        "`grape score --template`, which here also sees the row's fields (answer, tests, any column). openai: "
        "a .jinja file renders the user message, else the server's chat template. --prompt-format is the old "
        "name; the settings key is prompt_format. Default: auto",
    )  # fmt: skip
    parser.add_argument(
        "--reference-field", metavar="FIELD",
        help="add each row's FIELD (e.g. answer: the gold solution) as one more candidate, source 'reference'; "
        "rows without it are counted in the sidecar",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, metavar="N", help="generate for the first N input rows only")
    parser.add_argument(
        "--dry-run", action="store_true",
        help="write nothing, load no model: rows, generators, candidates to make, prompt tokens per generator, rows "
        "too long for the context, and the time at the rate earlier runs into OUTPUT measured",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=positive_int, help="hf: prompts per batch. Default: 16")
    parser.add_argument("--batching", choices=BATCHING, help="hf, greedy generators (temperature 0): continuous = a "
                        "finished answer's slot takes the next prompt at once; static = a batch runs to its longest "
                        "answer. Sampling is always static. Default: auto (continuous on a CPU when the model's KV "
                        "cache allows it)")  # fmt: skip
    parser.add_argument("--dtype", choices=ACCEPTED, help="hf: weights dtype. Default: auto")
    parser.add_argument("--device", help="hf: auto, cpu or cuda[:N]. Default: auto")
    parser.add_argument("--trust-remote-code", action="store_const", const=True, help="hf: allow custom model code")
    http = HTTPSettings()
    parser.add_argument("--base-url", help="openai: the server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument(
        "--api-key-env", help="openai: the environment variable holding the key. Default: OPENAI_API_KEY"
    )
    parser.add_argument(
        "--concurrency", type=positive_int, help=f"openai: requests in flight. Default: {http.concurrency}"
    )
    parser.add_argument(
        "--timeout", type=positive_float, help=f"openai: seconds per request. Default: {http.timeout_s:g}"
    )
    parser.add_argument("--max-retries", type=int,
                        help=f"openai: retries on 429/5xx/timeouts, with exponential backoff. Default: "
                        f"{http.max_retries}")  # fmt: skip
    add_input_options(parser)
    parser.set_defaults(run=run)


def generate_settings(args: argparse.Namespace) -> GenerateSettings:
    """Defaults < --config < flags, the nested sampling and HTTP flags included."""
    args.sampling = {k: getattr(args, k) for k in SAMPLING_FLAGS if getattr(args, k) is not None} or None
    args.http = {field: getattr(args, flag) for flag, field in HTTP_FLAGS.items() if getattr(args, flag) is not None}
    args.http = args.http or None
    return settings_from_args(GenerateSettings, args, (*FLAGS, "sampling", "http"))


def generator_value(text: str) -> str | dict[str, Any]:
    """A --model value: the spec string as it is, or a YAML mapping ``{name: ..., model: ..., ...}``."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise argparse.ArgumentTypeError(f"not a YAML mapping ({str(exc).splitlines()[0]})") from exc
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a mapping of {', '.join(GENERATOR_KEYS)}")
    return value


def run(args: argparse.Namespace) -> int:
    settings = generate_settings(args)
    if args.dry_run:
        from grape.generation.dry_run import plan_generation

        print_plan(plan_generation(args.input, args.output, settings), args.output)
        return 0
    rows, reports = generate(args.input, args.output, settings)
    header = ["generator", "new", "had", "failed", "mean tok", "mean chars", "tok/s"]
    print_table("Generation per generator", header, summary_rows(reports))
    for report in reports:
        for error in report.errors:
            console.print(f"[red]{report.name}[/] failed: {error}", highlight=False)
    reference = read_sidecar(args.output).get("reference")
    if reference:
        console.print(_reference_line(reference), highlight=False)
    total = sum(len(r["candidates"]) for r in rows)
    console.print(f"{len(rows)} instructions, {total} candidates written to [bold]{args.output}[/]")
    return 1 if any(r.failed for r in reports) else 0


def print_plan(plan: GenerationPlan, output: str) -> None:
    """The dry run's answer: the rows, what each generator would make, its prompt tokens and the time."""
    from grape.generation.dry_run import plan_rows

    rows = plan.rows
    line = f"{rows['input']} input rows; {rows['generated_for']} to generate for"
    if rows["past_limit"] or rows["output"] > rows["generated_for"]:
        line += f" (--limit; the output would hold {rows['output']})"
    console.print(line + (f"; {rows['unreadable']} unreadable" if rows["unreadable"] else ""), highlight=False)
    header = ["", *(g.name for g in plan.generators)]
    print_table(f"grape generate --dry-run → {output} (nothing written)", header, plan_rows(plan))
    for generator in plan.generators:
        if generator.note:
            console.print(f"{generator.name}: {generator.note}", highlight=False)
    if any(g.seconds is None and g.to_make for g in plan.generators):
        console.print("est. time unknown: no rate measured yet for that generator in this output (a run with "
                      "--limit N measures one; then --dry-run again)", highlight=False)  # fmt: skip
    elif plan.generators:
        console.print("est. time: generation only, linear in the candidates at the rate earlier runs into "
                      "this output measured (fuller batches go faster), plus loading each model",
                      highlight=False)  # fmt: skip
    if plan.reference is not None:
        console.print(_reference_line(asdict(plan.reference)).replace(" added", " to add"), highlight=False)


def _reference_line(reference: dict[str, Any]) -> str:
    line = f"reference ({reference['field']}): {reference['added']} added, {reference['existing']} already there"
    if reference["missing"]:
        line += f", {reference['missing']} rows without it (e.g. {', '.join(reference['missing_ids'])})"
    return line
