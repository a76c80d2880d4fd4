"""`grape decode`: the command-line face of grape.decoding.decode."""

from __future__ import annotations

import argparse

from grape.cli_options import (
    add_config_option,
    non_negative_float,
    positive_float,
    positive_int,
    settings_from_args,
    table_output,
)
from grape.console import console, print_table
from grape.data.layout import Columns
from grape.decoding.settings import CANDIDATE_SOURCES, CHOICES, METHODS, TRANSFERS, DecodeSettings
from grape.models.dtypes import ACCEPTED
from grape.models.embedded import EMBEDDED

FLAGS = ("method", "model", "baseline", "reward", "baseline_reward", "transfer", "template", "reward_template",
         "reward_eos", "top_k", "alpha", "beta", "rollout_tokens", "rollouts", "rollout_temperature", "choice",
         "temperature", "candidates", "n", "bon_temperature", "max_new_tokens", "stop", "cache", "trace", "seed",
         "limit", "columns", "on_error", "dtype", "device", "trust_remote_code")  # fmt: skip


EXAMPLES = """examples:
  grape decode prompts.jsonl -o greedy.jsonl --method greedy --model runs/sft
  grape decode prompts.jsonl -o tq.jsonl --method tq --model runs/sft --baseline runs/dpo --reward runs/rm
  grape decode prompts.jsonl -o bon.jsonl --method bon -n 8 --model runs/sft --reward runs/rm"""


def register(subparsers) -> None:
    d = DecodeSettings()
    parser = subparsers.add_parser(
        "decode", help="answer prompts with reward-guided decoding (Transfer Q*, ARGS, best-of-n) or greedily",
        description="Decode every prompt. tq (Transfer Q*): at each step the top-k tokens of --model (π_sft) are "
        "scored log π_sft(z|s) + α·Q̂(s,z), Q̂ the reward (--reward) of a rollout of the aligned --baseline "
        "(ρ_BL, e.g. a `grape dpo` model) from [s, z]; indirect transfer weights each rollout by "
        "exp((r − r_BL)/β). args: log π_sft + α·r([s, z]), no rollout. bon: the best of n samples of π_sft by r. "
        "greedy: π_sft's argmax. Prefix KV caches are kept across steps and expanded to the k candidates. "
        "Settings: defaults < --config YAML < flags.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("input", help="prompts: .jsonl/.parquet rows with a prompt (or messages), or a .txt file")
    parser.add_argument("-o", "--output", required=True, type=table_output, help="the answers: .jsonl (or .parquet)")
    add_config_option(parser)
    parser.add_argument("--method", choices=METHODS, help=f"Default: {d.method}")
    parser.add_argument("--model", help=f"π_sft: a model directory, .gguf, Hub id or embedded alias "
                        f"({', '.join(EMBEDDED)}). Default: {d.model}")  # fmt: skip
    parser.add_argument("--baseline", help="ρ_BL (tq): an aligned causal LM with π_sft's tokenizer")
    parser.add_argument("--reward", help="r (bon, args, tq): a reward model directory (grape reward-model)")
    parser.add_argument("--baseline-reward", help="r_BL (indirect transfer): the reward ρ_BL was aligned to")
    parser.add_argument("--transfer", choices=TRANSFERS, help=f"tq: Q̂ = mean r (direct) or mean "
                        f"exp((r − r_BL)/β)·r (indirect). Default: {d.transfer}")  # fmt: skip
    parser.add_argument("--template", help="prompt template of π_sft and ρ_BL (as grape score). Default: the one grape "
                        "trained --model with (its grape-sft.yaml, ...), else paper")  # fmt: skip
    parser.add_argument("--reward-template", help="the reward model's template. Default: the one it was trained "
                        "with (its grape-reward-model.yaml), else paper")  # fmt: skip
    parser.add_argument("--reward-no-eos", dest="reward_eos", action="store_const", const=False,
                        help="a finished response is read by the reward model without the end marker")  # fmt: skip
    parser.add_argument("--top-k", type=int, help=f"candidate tokens per step (args, tq). Default: {d.top_k}")
    parser.add_argument("--alpha", type=float, help=f"weight of Q̂ (tq) or r (args). Default: {d.alpha:g}")
    parser.add_argument("--beta", type=float, help=f"indirect transfer's β. Default: {d.beta:g}")
    parser.add_argument("--rollout-tokens", type=int, help="tokens each rollout adds after the candidate. "
                        "Default: 20 (direct), 5 (indirect)")  # fmt: skip
    parser.add_argument("--rollouts", type=int, help=f"rollouts per candidate. Default: {d.rollouts}")
    parser.add_argument("--rollout-temperature", type=non_negative_float, help="0 = greedy rollouts. Default: 0")
    parser.add_argument("--choice", choices=CHOICES, help="greedy: argmax of the scores; sample: softmax(scores/T)")
    parser.add_argument("--temperature", type=positive_float, help=f"of --choice sample. Default: {d.temperature:g}")
    parser.add_argument("--candidates", choices=CANDIDATE_SOURCES, help="where top-k and prior come from: sft (the "
                        "paper) or baseline (the released code). Default: sft")  # fmt: skip
    parser.add_argument("-n", type=int, help=f"bon: samples per prompt. Default: {d.n}")
    parser.add_argument("--bon-temperature", type=positive_float,
                        help=f"bon: sampling temperature. Default: {d.bon_temperature:g}")  # fmt: skip
    parser.add_argument("--max-new-tokens", type=positive_int, help=f"Default: {d.max_new_tokens}")
    parser.add_argument("--stop", action="append", help="a stop string (repeatable). Default: '\\nQuestion:' "
                        "with the paper templates")  # fmt: skip
    parser.add_argument("--no-cache", dest="cache", action="store_const", const=False,
                        help="recompute every prefix (the plain loop, to compare: same results, slower)")  # fmt: skip
    parser.add_argument("--trace", action="store_const", const=True, help="write each step's candidates and values")
    parser.add_argument("--seed", type=int, help="Default: 0")
    parser.add_argument("--limit", type=int, help="decode the first N prompts only")
    parser.add_argument("--columns", type=Columns.parse, metavar="NAME=COL,...", help="map input columns, e.g. "
                        "'prompt=instruction'")  # fmt: skip
    parser.add_argument("--on-error", choices=["fail", "skip"], help="a prompt the template cannot render: stop "
                        "(default) or keep it with status skipped:<reason>")  # fmt: skip
    parser.add_argument("--dtype", choices=ACCEPTED, help="weights dtype of every model. Default: auto")
    parser.add_argument("--device", help="auto, cpu or cuda[:N]. Default: auto")
    parser.add_argument("--trust-remote-code", action="store_const", const=True, help="allow custom model code")
    parser.set_defaults(run=run)


def decode_settings(args: argparse.Namespace) -> DecodeSettings:
    return settings_from_args(DecodeSettings, args, FLAGS)


def run(args: argparse.Namespace) -> int:
    from grape.decoding.decode import decode

    settings = decode_settings(args)
    _, summary = decode(args.input, args.output, settings)
    work = summary["work"]
    print_table(
        f"Decoding ({settings.method})",
        ["prompts", "decoded", "tokens", "tokens/s", "mean reward", "seconds"],
        [(summary["prompts"], summary["decoded"], summary["tokens"], summary["tokens_per_second"],
          summary["mean_reward"] if summary["mean_reward"] is not None else "-", summary["seconds"])],
    )  # fmt: skip
    console.print("model work (token positions): " + ", ".join(f"{k} {v}" for k, v in work.items()), highlight=False)
    console.print(f"answers written to [bold]{args.output}[/]")
    return 0
