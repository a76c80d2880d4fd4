"""Command-line options that several commands share: the model and its template, how input is read, and
``--config`` (defaults < config file < flags, for every command)."""

from __future__ import annotations

import argparse
import math
from typing import TypeVar

from grape.config import load_settings
from grape.data.layout import Columns
from grape.data.tables import table_suffix_problem
from grape.models.dtypes import ACCEPTED
from grape.models.embedded import DEFAULT_TARGET, EMBEDDED

T = TypeVar("T")


def positive_int(text: str) -> int:
    """An option's count (tokens, workers, steps, a batch): a whole number of at least 1, else argparse's one-line
    usage error naming the option."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def table_output(text: str) -> str:
    """``-o`` of a command that writes a table: a name ending in one of grape.data.tables.TABLE_SUFFIXES, else
    argparse's one-line usage error before any work (a .csv name used to get Parquet inside)."""
    problem = table_suffix_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _finite(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
    return value


def non_negative_float(text: str) -> float:
    """A quantity of 0 or more: a sampling temperature (0: greedy)."""
    value = _finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {value:g}")
    return value


def positive_float(text: str) -> float:
    """A quantity above 0: seconds of a timeout, a temperature that must sample."""
    value = _finite(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be above 0, not {value:g}")
    return value


def probability(text: str) -> float:
    """A probability above 0 and at most 1: nucleus sampling's top-p (1: no cut)."""
    value = _finite(text)
    if not 0 < value <= 1:
        raise argparse.ArgumentTypeError(f"must be above 0 and at most 1, not {value:g}")
    return value


class ExamplesHelpFormatter(argparse.HelpFormatter):
    """`--help` as argparse writes it, except that an epilog of examples keeps its lines (one command each)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if text.startswith("examples:"):
            return "\n".join(indent + line for line in text.splitlines())
        return super()._fill_text(text, width, indent)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by every command that loads a target model (each defaults to None: \"not given\")."""
    parser.add_argument(
        "--model",
        help=f"target model: a local transformers directory, a Hub id (needs network), a .gguf file, or an "
        f"embedded alias ({', '.join(EMBEDDED)}). Default: {DEFAULT_TARGET}",
    )  # fmt: skip
    parser.add_argument(
        "--template",
        help="how the prompt is rendered: 'paper' (Question: ...\\nAnswer: ), 'few-shot' (two solved examples, "
        "then paper), 'chat' (the tokenizer's chat template with the generation prompt; the response then ends "
        "with the template's end-of-turn marker), 'raw' (the prompt as is), or a path to a .jinja file that gets "
        "`prompt`, `messages` and `instruction`. The ids are the whole text's tokens. Default: paper",
    )  # fmt: skip
    parser.add_argument(
        "--no-eos",
        dest="eos",
        action="store_const",
        const=False,
        help="score nothing after the response text (by default EOS, or the chat template's end-of-turn "
        "marker, is appended and scored)",
    )
    parser.add_argument(
        "--dtype",
        choices=ACCEPTED,
        help="weights dtype; auto = bfloat16 on a GPU, float32 on CPU (see docs/performance.md)",
    )
    parser.add_argument("--device", help="auto, cpu or cuda[:N]. Default: auto")
    parser.add_argument(
        "--trust-remote-code",
        action="store_const",
        const=True,
        help="allow custom model code from the model's repository (off by default)",
    )


def add_input_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--layout",
        choices=["auto", "grouped", "long"],
        help="grouped: one row per instruction with a `candidates` list; long: one row per "
        "response (e.g. AlpacaEval's instruction/output/generator). Default: auto",
    )
    parser.add_argument(
        "--columns",
        type=Columns.parse,
        metavar="NAME=COL,...",
        help="map input columns, e.g. 'prompt=instruction,response=output,source=generator'. "
        "Names: id, prompt, candidates, response, source, answer, text_key, source_key",
    )
    parser.add_argument(
        "--split", help="the split to read from a Hub dataset or a datasets directory (needed when it has several)"
    )
    parser.add_argument("--subset", help="the config (subset) of a Hub dataset, e.g. 'main' for openai/gsm8k")
    parser.add_argument("--revision", help="the branch, tag or commit of a Hub dataset. Default: main")
    parser.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        help="fail: stop at the first bad row (default); skip: keep bad rows in the output "
        "with status skipped:<reason>",
    )


def add_resume_options(parser: argparse.ArgumentParser) -> None:
    """--resume / --no-resume of a training command (sft, dpo, reward-model, rl): the ``resume`` setting, None
    when neither is given (continue only from checkpoints made with the same settings)."""
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_const", const=True,
                        help="continue from OUTDIR/checkpoints even if they were made with other settings")  # fmt: skip
    resume.add_argument("--no-resume", dest="resume", action="store_const", const=False,
                        help="delete OUTDIR/checkpoints and start afresh. Default: continue when the checkpoints "
                        "were made with the same settings, stop when not")  # fmt: skip


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """``--config FILE``: a YAML file whose keys are the command's settings; flags given on the line win."""
    parser.add_argument(
        "--config", metavar="FILE",
        help="YAML file of settings (the keys of the `settings` block in the output's sidecar); flags win over it",
    )  # fmt: skip


def settings_from_args(cls: type[T], args: argparse.Namespace, flags: tuple[str, ...]) -> T:
    """Defaults < ``--config`` file < the flags given (flags default to None: "not given")."""
    return load_settings(cls, getattr(args, "config", None), {name: getattr(args, name) for name in flags})
