"""`grape generate`: the command-line face of grape.generation.generate."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, add_input_options, settings_from_args
from grape.console import console, print_table
from grape.generation.backend import Sampling
from grape.generation.generate import generate, summary_rows
from grape.generation.openai_backend import HTTPSettings
from grape.generation.prompts import PROMPT_FORMATS
from grape.generation.settings import GenerateSettings
from grape.models.dtypes import ACCEPTED
from grape.models.embedded import EMBEDDED

# GenerateSettings fields with a flag; the sampling and HTTP flags fill its nested `sampling:` and `http:`.
FLAGS = ("models", "prompt_format", "batch_size", "dtype", "device", "trust_remote_code", "base_url", "api_key_env",
         "on_error", "layout", "columns", "split", "subset", "revision")  # fmt: skip
SAMPLING_FLAGS = ("n", "temperature", "top_p", "max_new_tokens", "seed", "stop")
HTTP_FLAGS = {"concurrency": "concurrency", "timeout": "timeout_s", "max_retries": "max_retries"}


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="sample candidate responses from one or more models",
        description="Sample N responses per instruction from each generator and add them to the candidate pool "
        "(grouped layout, source = the generator's name). Resumable: a re-run skips every (instruction, "
        "generator, sample) already in the output. Settings: defaults < --config YAML < flags.",
    )  # fmt: skip
    parser.add_argument("input", help="prompts (.jsonl/.parquet rows, or a .txt with one per line), or a "
                        "grouped/long file with candidates (new ones are added)")  # fmt: skip
    parser.add_argument("-o", "--output", required=True, help="the candidate pool: .jsonl (or .parquet)")
    add_config_option(parser)
    parser.add_argument(
        "--model", action="append", metavar="SPEC", dest="models",
        help="a generator, repeatable: [NAME=][BACKEND:]MODEL[@BASE_URL]. BACKEND is hf (default: a local "
        f"directory, .gguf, Hub id or embedded alias: {', '.join(EMBEDDED)}), openai (an OpenAI-compatible "
        "server) or vllm. NAME (the candidates' source) defaults to the model's name.",
    )  # fmt: skip
    defaults = Sampling()
    parser.add_argument("-n", type=int, help="samples per instruction and generator. Default: 1")
    parser.add_argument("--temperature", type=float, help=f"0 = greedy. Default: {defaults.temperature}")
    parser.add_argument("--top-p", type=float, help=f"Default: {defaults.top_p}")
    parser.add_argument("--max-new-tokens", type=int, help=f"Default: {defaults.max_new_tokens}")
    parser.add_argument("--seed", type=int, help="Default: 0")
    parser.add_argument("--stop", action="append", help="a stop string (repeatable)")
    parser.add_argument(
        "--prompt-format", metavar="|".join(PROMPT_FORMATS),
        help="hf/vllm: auto = the chat template where the model has one, else a few-shot Question:/Answer: "
        "prefix (base models); paper, raw, or a .jinja file as in `grape score --template`. Default: auto",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, help="hf: prompts per batch. Default: 16")
    parser.add_argument("--dtype", choices=ACCEPTED, help="hf: weights dtype. Default: auto")
    parser.add_argument("--device", help="hf: auto, cpu or cuda[:N]. Default: auto")
    parser.add_argument("--trust-remote-code", action="store_const", const=True, help="hf: allow custom model code")
    http = HTTPSettings()
    parser.add_argument("--base-url", help="openai: the server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument(
        "--api-key-env", help="openai: the environment variable holding the key. Default: OPENAI_API_KEY"
    )
    parser.add_argument("--concurrency", type=int, help=f"openai: requests in flight. Default: {http.concurrency}")
    parser.add_argument("--timeout", type=float, help=f"openai: seconds per request. Default: {http.timeout_s:g}")
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


def run(args: argparse.Namespace) -> int:
    rows, reports = generate(args.input, args.output, generate_settings(args))
    header = ["generator", "new", "had", "failed", "mean tok", "mean chars", "tok/s"]
    print_table("Generation per generator", header, summary_rows(reports))
    for report in reports:
        for error in report.errors:
            console.print(f"[red]{report.name}[/] failed: {error}", highlight=False)
    total = sum(len(r["candidates"]) for r in rows)
    console.print(f"{len(rows)} instructions, {total} candidates written to [bold]{args.output}[/]")
    return 1 if any(r.failed for r in reports) else 0
