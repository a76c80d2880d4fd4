"""`grape tta`: the command-line face of grape.tta.run.tta (torch is imported only when the command runs)."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, positive_int, settings_from_args
from grape.console import console, print_table
from grape.tta.settings import METHODS, TTASettings

FLAGS = ("data", "heldout", "method", "seed", "steps", "lr", "test_batch")  # TTASettings fields with a flag


EXAMPLES = """examples:
  grape tta -o runs/itta --data digits --heldout 45 --method itta --seed 0
  grape tta -o runs/erm --data digits --heldout 0 --method erm
  grape tta -o runs/mine --data my_domains.npz --heldout 2 --method itta"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "tta", help="domain generalisation with test-time adaptation (ITTA) on domain-labelled images",
        description="Train a small ResNet-style CNN from scratch with one domain held out (DomainBed: the "
        "checkpoint is chosen on the training domains' validation rows), then measure accuracy on the held-out "
        "domain; ttt and itta also take one optimiser step per test batch, online. Writes DIR/accuracy.jsonl "
        "and its sidecar (resolved settings and metrics). Settings: defaults < --config YAML < flags.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("-o", "--output", required=True, help="output folder")
    add_config_option(parser)
    parser.add_argument(
        "--data", metavar="digits|FILE.npz",
        help="digits: scikit-learn's 8x8 digits rotated 0/15/30/45/60/75 degrees (six domains); or a .npz with "
        "x (N, H, W) or (N, C, H, W), y (N,) class ids and domain (N,). Default: digits",
    )  # fmt: skip
    parser.add_argument("--heldout", metavar="DOMAIN", help="the target domain's name (digits: an angle). Default: 0")
    parser.add_argument(
        "--method", choices=METHODS,
        help="erm; mixstyle (CE on clean and MixStyle views); ttt (plus a fixed consistency loss, and at test time "
        "steps on every featurizer parameter); itta-no-tt (ITTA's training, no test-time steps); itta. Default: itta",
    )  # fmt: skip
    parser.add_argument("--seed", type=int, help="Default: 0")
    parser.add_argument("--steps", type=positive_int, help="training steps. Default: 300")
    parser.add_argument("--lr", type=float, help="Adam learning rate (w and test-time steps: a tenth). Default: 1e-3")
    parser.add_argument("--test-batch", type=int, help="target images per test-time step. Default: 64")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grape.tta.run import tta

    settings = settings_from_args(TTASettings, args, FLAGS)
    with console.status(f"training {settings.method} with domain {settings.heldout} held out"):
        metrics = tta(args.output, settings)
    rows = [(mode, f"{100 * value:.1f}%") for mode, value in metrics["accuracy"].items()]
    print_table(f"{metrics['method']}, held-out domain {metrics['heldout']} ({metrics['target_images']} images)",
                ["test-time steps", "accuracy"], rows)  # fmt: skip
    console.print(f"validation accuracy {100 * metrics['val_accuracy']:.1f}% at step {metrics['best_step']}; "
                  f"written to [bold]{args.output}[/]")  # fmt: skip
    return 0
