"""`grape` command line: one subcommand per stage of the data path.

Each stage module registers its own subcommand (``register(subparsers)``), so adding a stage is one
line in COMMANDS. User mistakes (`GrapeError`) and the file system's refusals (a full disk, a read-only
folder) are printed as one line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from grape import __version__
from grape.cli_options import ExamplesHelpFormatter
from grape.console import console
from grape.errors import FILE_SYSTEM_ERRNOS, GrapeError, file_system_error

COMMANDS = [  # in the order of the data path, as `grape --help` lists them
    "grape.demo.cli",  # demo
    "grape.pipeline.cli",  # run
    "grape.generation.cli",  # generate
    "grape.verification.cli",  # verify
    "grape.scoring.cli",  # score
    "grape.selection.cli",  # select
    "grape.selection.pairs_cli",  # pairs
    "grape.report.cli",  # report
    "grape.training.cli",  # sft
    "grape.training.dpo_cli",  # dpo
    "grape.training.reward_model_cli",  # reward-model
    "grape.rl.cli",  # rl
    "grape.evaluation.cli",  # eval
    "grape.budgeting.cli",  # budget: sft, dpo and eval over a grid of data budgets
    "grape.decoding.cli",  # decode
    "grape.tools.cli",  # tools
    "grape.search.cli",  # itool
    "grape.tta.cli",  # tta
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grape",
        description="Fit-aware post-training: score candidate responses with the target model (mean "
        "log-probability per response token), keep the best-fitting one per instruction, fine-tune on it.",
    )
    parser.add_argument("--version", action="version", version=f"grape {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(name).register(subparsers)
    _with_examples(parser)
    return parser


def _with_examples(parser: argparse.ArgumentParser, examples: str | None = None) -> None:
    """Every subcommand's help ends with its examples (a nested one's, without its own, with its parent's)."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.formatter_class = ExamplesHelpFormatter
                command.epilog = command.epilog or examples
                _with_examples(command, command.epilog)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse(build_parser(), argv)  # an option's parser (e.g. --columns) may refuse with a GrapeError
        return int(args.run(args) or 0)
    except GrapeError as exc:
        return _report(exc)
    except OSError as exc:  # the machine refused (full disk, read-only folder) somewhere no stage expected it
        if exc.errno not in FILE_SYSTEM_ERRNOS:
            raise  # anything else is a defect in grape, and its traceback is what a bug report needs
        return _report(file_system_error(exc.filename or "a file", exc, doing="use"))
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


def parse(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The parsed command line, where a command's trailing positionals may also follow its flags.

    argparse ends a ``nargs="*"`` positional at the first flag, so ``grape run p.yaml --dry-run x=1`` would
    refuse ``x=1``. A command that names its list in ``set_defaults(trailing=...)`` gets such words appended.
    """
    args, extra = parser.parse_known_args(argv)
    trailing = getattr(args, "trailing", None)
    if extra and trailing is not None and not any(word.startswith("-") for word in extra):
        getattr(args, trailing).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _report(exc: GrapeError) -> int:
    """Print a user-facing error as one line (no markup from the message itself) and give the exit code."""
    console.print("[bold red]error:[/] ", end="", markup=True)
    console.print(str(exc), highlight=False, markup=False, soft_wrap=True)
    return 2


if __name__ == "__main__":
    sys.exit(main())
