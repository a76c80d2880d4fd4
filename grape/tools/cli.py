"""`grape tools`: tool-calling data. `grape tools prepare` is the command-line face of grape.tools.prepare."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, settings_from_args, table_output
from grape.console import console, print_table
from grape.tools.settings import FORMATS, WEIGHTS, PrepareSettings

FLAGS = ("answers", "docs", "format", "model", "template", "eos", "weights", "max_key_weight", "clean_turns",
         "no_call_response", "trust_remote_code")  # fmt: skip


EXAMPLES = """examples:
  grape tools prepare BFCL_v4_live_simple.json --answers possible_answer/BFCL_v4_live_simple.json -o rows.jsonl
  grape tools prepare trajectories.jsonl -o rows.jsonl --weights key-tokens --model smollm2-135m-instruct"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tools", help="tool-calling data: BFCL or chat trajectories into grape's rows (docs/tools.md)",
        description="Tool calls as data. The `tool-call` verifier (grape verify --verifier tool-call) judges "
        "calls against these rows' answers; grape rl --verifier tool-call rewards them with TL-Training's "
        "error-category reward.",
        epilog=EXAMPLES,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="tools_command", metavar="COMMAND", required=True, help="prepare")
    prepare = commands.add_parser(
        "prepare", help="one row per target turn: prompt, completion, answer, tools (and loss_weights)",
        description="Read a BFCL question file (with --answers, its possible_answer file) or chat trajectories "
        "(rows with messages and tools) and write one row per target turn: id, prompt, completion, answer (the "
        "gold calls in BFCL's form), tools, and with --weights key-tokens loss_weights for grape sft --loss "
        "weighted. Multi-turn trajectories are split into one row per assistant turn, leaving out as targets the "
        "turns whose tool output matches an error signature (TL-Training's MAE).",
    )  # fmt: skip
    prepare.add_argument("input", help="a BFCL_v4_<category>.json question file, or chat trajectories (.jsonl)")
    prepare.add_argument("-o", "--output", required=True, type=table_output, help="the rows: .jsonl")
    prepare.add_argument("--answers", help="BFCL's possible_answer file of the question file (not for irrelevance)")
    prepare.add_argument("--docs", help="BFCL's multi_turn_func_doc folder. Default: beside the question file")
    prepare.add_argument(
        "--format", choices=FORMATS,
        help="plain: the tools as Python signatures in the system turn, calls as name(arg='v'); chat: the model's "
        "chat template with tools= (train the rows with --template raw); auto: chat where the model's template "
        "renders tools, else plain. Default: auto",
    )  # fmt: skip
    prepare.add_argument("--model", help="the model whose tokenizer renders the prompt and cuts the tokens")
    prepare.add_argument("--template", help="the template the rows are trained with. Default: chat if the model "
                         "has a chat template, else paper")  # fmt: skip
    prepare.add_argument("--no-eos", dest="eos", action="store_const", const=False,
                         help="train nothing after the response (as grape sft --no-eos)")  # fmt: skip
    prepare.add_argument(
        "--weights", choices=WEIGHTS,
        help="key-tokens: TL-Training's key-token weights as loss_weights (the tool-choice tokens weighted "
        "min(|other| / |key|, 9)). Needs --model. Default: none",
    )  # fmt: skip
    prepare.add_argument("--max-key-weight", type=float, help="the cap on the key tokens' weight. Default: 9")
    prepare.add_argument("--no-clean-turns", dest="clean_turns", action="store_const", const=False,
                         help="keep turns whose tool output matches an error signature as targets")  # fmt: skip
    prepare.add_argument("--no-call-response", help="the completion of rows where no call is right "
                         "(BFCL's irrelevance). Default: none (such rows serve grape rl and verify only)")  # fmt: skip
    prepare.add_argument("--trust-remote-code", action="store_const", const=True,
                         help="allow custom tokenizer code from the model's repository")  # fmt: skip
    add_config_option(prepare)
    prepare.set_defaults(run=run_prepare)


def run_prepare(args: argparse.Namespace) -> int:
    from grape.tools.prepare import prepare

    settings = settings_from_args(PrepareSettings, args, FLAGS)
    _, summary = prepare(args.input, args.output, settings)
    print_table("Tool-calling rows", ["rows", "excluded turns", "without completion", "without answer"],
                [(summary["rows"], summary["excluded_turns"], summary["without_completion"],
                  summary["without_answer"])])  # fmt: skip
    console.print(f"rows written to [bold]{args.output}[/]")
    return 0
