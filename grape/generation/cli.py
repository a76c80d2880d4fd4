"""`grape generate`: the command-line face of grape.generation.generate."""

from __future__ import annotations

import argparse

from grape.cli_options import add_input_options
from grape.console import console, print_table
from grape.data.layout import Columns
from grape.generation.backend import Sampling
from grape.generation.generate import GenerateSettings, generate, summary_rows
from grape.generation.openai_backend import HTTPSettings
from grape.generation.prompts import PROMPT_FORMATS
from grape.models.embedded import EMBEDDED


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate", help="sample candidate responses from one or more models",
        description="Sample N responses per instruction from each generator and add them to the candidate pool "
        "(grouped layout, source = the generator's name). Resumable: a re-run skips every (instruction, "
        "generator, sample) already in the output.",
    )  # fmt: skip
    parser.add_argument("input", help="prompts (.jsonl/.parquet rows, or a .txt with one per line), or a "
                        "grouped/long file with candidates (new ones are added)")  # fmt: skip
    parser.add_argument("-o", "--output", required=True, help="the candidate pool: .jsonl (or .parquet)")
    parser.add_argument(
        "--model", action="append", required=True, metavar="SPEC", dest="models",
        help="a generator, repeatable: [NAME=][BACKEND:]MODEL[@BASE_URL]. BACKEND is hf (default: a local "
        f"directory, .gguf, Hub id or embedded alias: {', '.join(EMBEDDED)}), openai (an OpenAI-compatible "
        "server) or vllm. NAME (the candidates' source) defaults to the model's name.",
    )  # fmt: skip
    defaults = Sampling()
    parser.add_argument("-n", type=int, default=defaults.n, help="samples per instruction and generator. Default: 1")
    parser.add_argument("--temperature", type=float, default=defaults.temperature,
                        help=f"0 = greedy. Default: {defaults.temperature}")  # fmt: skip
    parser.add_argument("--top-p", type=float, default=defaults.top_p, help=f"Default: {defaults.top_p}")
    parser.add_argument("--max-new-tokens", type=int, default=defaults.max_new_tokens,
                        help=f"Default: {defaults.max_new_tokens}")  # fmt: skip
    parser.add_argument("--seed", type=int, default=defaults.seed, help="Default: 0")
    parser.add_argument("--stop", action="append", default=[], help="a stop string (repeatable)")
    parser.add_argument(
        "--prompt-format", default="auto", metavar="|".join(PROMPT_FORMATS),
        help="hf/vllm: auto = the chat template where the model has one, else a few-shot Question:/Answer: "
        "prefix (base models); paper, raw, or a .jinja file as in `grape score --template`. Default: auto",
    )  # fmt: skip
    parser.add_argument("--batch-size", type=int, default=16, help="hf: prompts per batch. Default: 16")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"],
                        help="hf: weights dtype. Default: auto")  # fmt: skip
    parser.add_argument("--device", default="auto", help="hf: auto, cpu or cuda[:N]. Default: auto")
    parser.add_argument("--trust-remote-code", action="store_true", help="hf: allow custom model code")
    http = HTTPSettings()
    parser.add_argument("--base-url", default=None, help="openai: the server, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY",
                        help="openai: the environment variable holding the key. Default: OPENAI_API_KEY")  # fmt: skip
    parser.add_argument("--concurrency", type=int, default=http.concurrency,
                        help=f"openai: requests in flight. Default: {http.concurrency}")  # fmt: skip
    parser.add_argument("--timeout", type=float, default=http.timeout_s,
                        help=f"openai: seconds per request. Default: {http.timeout_s:g}")  # fmt: skip
    parser.add_argument("--max-retries", type=int, default=http.max_retries,
                        help=f"openai: retries on 429/5xx/timeouts, with exponential backoff. Default: "
                        f"{http.max_retries}")  # fmt: skip
    add_input_options(parser)
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> GenerateSettings:
    sampling = Sampling(n=args.n, temperature=args.temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                        seed=args.seed, stop=args.stop)  # fmt: skip
    http = HTTPSettings(concurrency=args.concurrency, timeout_s=args.timeout, max_retries=args.max_retries)
    return GenerateSettings(
        models=args.models, sampling=sampling, prompt_format=args.prompt_format, batch_size=args.batch_size,
        dtype=args.dtype, device=args.device, trust_remote_code=args.trust_remote_code, base_url=args.base_url,
        api_key_env=args.api_key_env, http=http, on_error=args.on_error, layout=args.layout,
        columns=Columns.parse(args.columns), split=args.split,
    )  # fmt: skip


def run(args: argparse.Namespace) -> int:
    rows, reports = generate(args.input, args.output, settings_from_args(args))
    header = ["generator", "new", "had", "failed", "mean tok", "mean chars", "tok/s"]
    print_table("Generation per generator", header, summary_rows(reports))
    for report in reports:
        for error in report.errors:
            console.print(f"[red]{report.name}[/] failed: {error}", highlight=False)
    total = sum(len(r["candidates"]) for r in rows)
    console.print(f"{len(rows)} instructions, {total} candidates written to [bold]{args.output}[/]")
    return 1 if any(r.failed for r in reports) else 0
