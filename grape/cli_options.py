"""Command-line options that several commands share: the model and its template, and how input is read."""

from __future__ import annotations

import argparse

from grape.models.embedded import DEFAULT_TARGET, EMBEDDED


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that loads a target model."""
    parser.add_argument(
        "--model", default=DEFAULT_TARGET,
        help=f"target model: a local transformers directory, a Hub id (needs network), a .gguf file, or an "
        f"embedded alias ({', '.join(EMBEDDED)}). Default: {DEFAULT_TARGET}",
    )  # fmt: skip
    parser.add_argument(
        "--template", default="paper",
        help="how the prompt is rendered: 'paper' (Question: ...\\nAnswer: ), 'few-shot' (two solved examples, "
        "then paper), 'chat' (the tokenizer's chat template with the generation prompt; the response then ends "
        "with the template's end-of-turn marker), 'raw' (the prompt as is), or a path to a .jinja file that gets "
        "`prompt`, `messages` and `instruction`. The ids are the whole text's tokens. Default: paper",
    )  # fmt: skip
    parser.add_argument(
        "--no-eos",
        dest="eos",
        action="store_false",
        help="score nothing after the response text (by default EOS, or the chat template's end-of-turn "
        "marker, is appended and scored)",
    )
    parser.add_argument(
        "--dtype",
        default="auto",
        choices=["auto", "float32", "bfloat16", "float16"],
        help="weights dtype; auto = bfloat16 on a GPU, float32 on CPU (see docs/performance.md)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]. Default: auto")
    parser.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow custom model code from the model's repository (off by default)",
    )


def add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout",
        default="auto",
        choices=["auto", "grouped", "long"],
        help="grouped: one row per instruction with a `candidates` list; long: one row per "
        "response (e.g. AlpacaEval's instruction/output/generator). Default: auto",
    )
    parser.add_argument(
        "--columns",
        default=None,
        metavar="NAME=COL,...",
        help="map input columns, e.g. 'prompt=instruction,response=output,source=generator'. "
        "Names: id, prompt, candidates, response, source, answer, text_key, source_key",
    )
    parser.add_argument("--split", default=None, help="the split to read from a datasets directory")
    parser.add_argument(
        "--on-error",
        default="fail",
        choices=["fail", "skip"],
        help="fail: stop at the first bad row (default); skip: keep bad rows in the output "
        "with status skipped:<reason>",
    )
