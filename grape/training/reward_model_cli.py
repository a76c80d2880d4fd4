"""`grape reward-model`: the command-line face of grape.training.reward_model.reward_model."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, settings_from_args
from grape.console import console, print_table
from grape.training.reward_model_settings import RewardModelSettings, reward_learning_rate
from grape.training.trainer_flags import TRAINER_FLAGS, TrainedOn, add_trainer_flags

FLAGS = (*TRAINER_FLAGS, "center_rewards", "eval_pairs", "logging_steps", "trust_remote_code")


EXAMPLES = """examples:
  grape reward-model pairs.jsonl -o runs/rm --model smollm2-135m-instruct            # LoRA r=16
  grape reward-model pairs.jsonl -o runs/rm --model runs/sft --lora-r 0 --max-steps 200 --lr 1e-5"""


def register(subparsers) -> None:
    d = RewardModelSettings()
    parser = subparsers.add_parser(
        "reward-model", help="train a reward model on preference pairs (TRL RewardTrainer), for grape decode",
        description="Train r(prompt, response): a one-output sequence-classification head on any causal LM (LoRA on "
        "the body by default), Bradley-Terry loss on chosen vs rejected, with TRL's RewardTrainer. The text is "
        "rendered as the pairs were scored (their sidecar's template and eos, as grape sft does) and tokenised "
        "whole. OUTDIR gets a transformers model directory, grape-reward-model.yaml (resolved settings, read "
        "by grape decode), checkpoints/ (a re-run resumes), grape-reward-model.json (loss curve, accuracies) and "
        "README.md. "
        "Settings: defaults < --config YAML < flags.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("pairs", help="pairs written by `grape pairs` (prompt/chosen/rejected rows, .jsonl/.parquet)")
    parser.add_argument("-o", "--output-dir", "--output_dir", dest="output_dir", required=True,
                        help="where the reward model is written")  # fmt: skip
    add_config_option(parser)
    add_trainer_flags(parser, d, reward_learning_rate, TrainedOn("the pairs", "were", "pairs", "prompt + response"))
    parser.add_argument("--center-rewards", type=float, help="TRL's center_rewards_coefficient, e.g. 0.01")
    parser.add_argument("--eval-pairs", help="held-out pairs: loss and accuracy after training")
    parser.add_argument("--logging-steps", type=int, help=f"Default: {d.logging_steps}")
    parser.add_argument("--trust-remote-code", action="store_const", const=True, help="allow custom model code")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from grape.training.reward_model import reward_model

    result = reward_model(args.pairs, args.output_dir, settings_from_args(RewardModelSettings, args, FLAGS))
    m, held_out = result.metrics, result.metrics.get("eval") or {}
    print_table(
        "Reward model",
        ["pairs", "steps", "loss first", "loss last", "held-out accuracy", "LoRA r", "seconds"],
        [(m["pairs"], m["steps"], m["loss_first"], m["loss_last"], held_out.get("accuracy", "-"),
          result.settings.lora_r, m["seconds"])],
    )  # fmt: skip
    if m["resumed_from"]:
        console.print(f"resumed from {m['resumed_from']}")
    console.print(f"the reward model is in [bold]{args.output_dir}[/] (use it: grape decode --reward DIR)")
    return 0
