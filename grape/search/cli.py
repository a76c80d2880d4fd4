"""`grape itool`: iTool's steps on tool-calling rows (docs/tools.md). The whole method, warm-up and iterations,
is a pipeline: `grape run examples/itool.yaml`."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, positive_float, positive_int, settings_from_args, table_output
from grape.console import console, print_table
from grape.search.settings import JUDGES, PAIR_LEVELS, DeficiencySettings, MCTSSettings
from grape.tools.curriculum_settings import CRITERIA, CurriculumSettings

MODEL_FLAGS = ("model", "template", "dtype", "device", "trust_remote_code")
DEFICIENCY_FLAGS = (*MODEL_FLAGS, "fraction", "eos")
MCTS_FLAGS = (*MODEL_FLAGS, "simulations", "samples", "max_new_tokens", "temperature", "max_depth",
              "fragments_per_step", "exploration", "judge", "pairs", "min_gap", "min_chosen", "max_overlap",
              "seed", "trees", "questions_at_once")  # fmt: skip


EXAMPLES = """examples:
  grape itool curriculum rows.jsonl -o warmup.jsonl
  grape itool deficiency rows.jsonl -o weak.jsonl --model runs/warmup
  grape run examples/itool.yaml                # warm-up, then iterations of deficiency -> mcts -> simpo"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "itool", help="iTool: easy-to-hard order, deficient rows by fit, MCTS step-level preference pairs",
        description="iTool's steps on rows of `grape tools prepare`. One iteration: deficiency -> mcts -> "
        "grape dpo --loss simpo; the warm-up: curriculum -> grape sft. examples/itool.yaml runs it all "
        "(grape run) with a repeat: block.",
        epilog=EXAMPLES,
    )  # fmt: skip
    commands = parser.add_subparsers(dest="itool_command", metavar="COMMAND", required=True,
                                     help="curriculum, deficiency, mcts")  # fmt: skip
    order = commands.add_parser("curriculum", help="the trainable rows from easy to hard, for the warm-up sft")
    order.add_argument("input", help="tool-calling rows (.jsonl of grape tools prepare)")
    order.add_argument("-o", "--output", required=True, type=table_output, help="the ordered rows: .jsonl")
    order.add_argument("--order", type=lambda text: text.split(","), metavar="A,B,C",
                       help=f"the counts to sort by, first deciding: of {', '.join(CRITERIA)}. "
                       "Default: calls,tools,arguments")  # fmt: skip
    add_config_option(order)
    order.set_defaults(run=run_curriculum)

    weak = commands.add_parser("deficiency", help="score the gold answers; keep the worst-fitting share per group")
    weak.add_argument("input", help="tool-calling rows (.jsonl of grape tools prepare)")
    weak.add_argument("-o", "--output", required=True, type=table_output, help="the kept rows: .jsonl")
    _model_options(weak)
    weak.add_argument("--fraction", type=float, help="the share of each group (calls / no call) kept. Default: 0.3")
    weak.add_argument("--no-eos", dest="eos", action="store_const", const=False,
                      help="score the gold answers without the end marker")  # fmt: skip
    add_config_option(weak)
    weak.set_defaults(run=run_deficiency)

    tree = commands.add_parser(
        "mcts", help="search step-level partial answers; write preference pairs",
        description="Monte Carlo tree search over each row's partial answers; the pairs are for grape dpo --loss "
        "simpo (their sidecar sets template raw and eos false).",
    )  # fmt: skip
    tree.add_argument("input", help="tool-calling rows with their gold answers (.jsonl)")
    tree.add_argument("-o", "--output", required=True, type=table_output, help="the pairs: .jsonl")
    _model_options(tree)
    tree.add_argument("--simulations", type=int, help="simulations per question. Default: 5")
    tree.add_argument("--samples", type=int, help="continuations sampled per expansion. Default: 3")
    tree.add_argument("--max-new-tokens", type=positive_int, help="tokens per sampled continuation. Default: 50")
    tree.add_argument("--temperature", type=positive_float, help="sampling temperature. Default: 1.5")
    tree.add_argument("--max-depth", type=int, help="levels of steps in the tree. Default: 3")
    tree.add_argument("--fragments-per-step", type=int, help="fragments (cut at . , = and () a step. Default: 2")
    tree.add_argument("--exploration", type=float, help="w in UCB. Default: 1")
    tree.add_argument("--judge", choices=JUDGES, help="the terminal reward: tool-call (+1/-1), irm (TL-Training's "
                      "graded), self-eval (the model's A-D grade). Default: tool-call")  # fmt: skip
    tree.add_argument("--pairs", choices=PAIR_LEVELS, help="step (iTool) or answer (whole answers). Default: step")
    tree.add_argument("--min-gap", type=float, help="least V_chosen - V_rejected kept. Default: 0.1")
    tree.add_argument("--min-chosen", type=float, help="least V_chosen kept. Default: -0.3")
    tree.add_argument("--max-overlap", type=float, help="most word overlap of the two texts kept. Default: 0.95")
    tree.add_argument("--seed", type=int, help="Default: 0")
    tree.add_argument("--trees", help="the searched trees to reuse and add to (.jsonl; runs may share one: other "
                      "pair rules read their pairs from the kept searches). Default: <output>.trees.jsonl")  # fmt: skip
    tree.add_argument("--questions-at-once", type=int, help="searches under way together, their continuations "
                      "sampled as one batch (the same searches at any number, up to rounding). Default: 4")  # fmt: skip
    add_config_option(tree)
    tree.set_defaults(run=run_mcts)


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="the current model. Default: the rows' sidecar model")
    parser.add_argument("--template", help="how a row's prompt is rendered. Default: the rows' sidecar template, "
                        "else chat where the model has one, else paper")  # fmt: skip
    parser.add_argument("--dtype", help="Default: auto")
    parser.add_argument("--device", help="Default: auto")
    parser.add_argument("--trust-remote-code", action="store_const", const=True,
                        help="allow custom code from the model's repository")  # fmt: skip


def run_curriculum(args: argparse.Namespace) -> int:
    from grape.tools.curriculum import curriculum

    _, summary = curriculum(args.input, args.output, settings_from_args(CurriculumSettings, args, ("order",)))
    print_table("Easy to hard", ["rows", "ordered", "left out"],
                [(summary["rows"], summary["ordered"], summary["left_out"])])  # fmt: skip
    console.print(f"ordered rows written to [bold]{args.output}[/]")
    return 0


def run_deficiency(args: argparse.Namespace) -> int:
    from grape.search.deficiency import deficiency

    _, summary = deficiency(args.input, args.output, settings_from_args(DeficiencySettings, args, DEFICIENCY_FLAGS))
    print_table("Deficient rows", ["rows", "scored", "kept", "kept with calls", "kept without"],
                [(summary["rows"], summary["scored"], summary["kept"], summary["kept_by_group"]["calls"],
                  summary["kept_by_group"]["no call"])])  # fmt: skip
    console.print(f"rows written to [bold]{args.output}[/]")
    return 0


def run_mcts(args: argparse.Namespace) -> int:
    from grape.search.run import mcts

    _, summary = mcts(args.input, args.output, settings_from_args(MCTSSettings, args, MCTS_FLAGS))
    print_table("MCTS pairs", ["questions", "searches kept", "pairs", "questions without pair", "generator calls"],
                [(summary["questions"], summary["questions_from_kept_trees"], summary["pairs"],
                  summary["questions_without_pair"], summary["generator_calls"])])  # fmt: skip
    console.print(f"pairs written to [bold]{args.output}[/]")
    return 0
