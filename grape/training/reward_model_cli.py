"""`grape reward-model`: the command-line face of grape.training.reward_model.reward_model."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, settings_from_args
from grape.console import console, print_table
from grape.models.embedded import DEFAULT_TARGET
from grape.training.reward_model_settings import RewardModelSettings

FLAGS = ("model", "template", "eos", "epochs", "max_steps", "lr", "batch_size", "grad_accum", "max_length", "lora_r",
         "center_rewards", "eval_pairs", "precision", "seed", "logging_steps", "save_steps", "resume", "report_to",
         "device", "trust_remote_code")  # fmt: skip


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
    parser.add_argument("--model", "--model_name_or_path", dest="model", help="the causal LM under the head. "
                        f"Default: the one the pairs were scored with, else {DEFAULT_TARGET}")  # fmt: skip
    parser.add_argument("--template", help="prompt template. Default: the pairs' scoring one, else paper")
    parser.add_argument("--no-eos", dest="eos", action="store_const", const=False,
                        help="responses without the end marker (default: as the pairs were scored)")  # fmt: skip
    parser.add_argument("--epochs", "--num_train_epochs", dest="epochs", type=float, help=f"Default: {d.epochs:g}")
    parser.add_argument("--max-steps", "--max_steps", dest="max_steps", type=int, help="> 0 overrides --epochs")
    parser.add_argument("--lr", "--learning_rate", dest="lr", type=float,
                        help="Default: 1e-4 with LoRA, 1e-5 for full fine-tuning")  # fmt: skip
    parser.add_argument("--batch-size", "--per_device_train_batch_size", dest="batch_size", type=int,
                        help=f"pairs per device per step. Default: {d.batch_size}")  # fmt: skip
    parser.add_argument("--grad-accum", "--gradient_accumulation_steps", dest="grad_accum", type=int,
                        help="gradient accumulation steps. Default: 1")  # fmt: skip
    parser.add_argument("--max-length", "--max_length", dest="max_length", type=int,
                        help="longest prompt + response in tokens (longer: error). Default: context")  # fmt: skip
    parser.add_argument("--lora-r", "--lora_r", dest="lora_r", type=int,
                        help=f"LoRA rank; 0 = full fine-tuning. Default: {d.lora_r}")  # fmt: skip
    parser.add_argument("--center-rewards", type=float, help="TRL's center_rewards_coefficient, e.g. 0.01")
    parser.add_argument("--eval-pairs", help="held-out pairs: loss and accuracy after training")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], help="auto: bf16 on a GPU, fp32 on CPU")
    parser.add_argument("--seed", type=int, help="data order and the head's initialisation. Default: 0")
    parser.add_argument("--logging-steps", type=int, help=f"Default: {d.logging_steps}")
    parser.add_argument("--save-steps", "--save_steps", dest="save_steps", type=int,
                        help=f"checkpoint every N steps into OUTDIR/checkpoints. Default: {d.save_steps}")  # fmt: skip
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_const", const=True,
                        help="continue from OUTDIR/checkpoints even if they were made with other settings")  # fmt: skip
    resume.add_argument("--no-resume", dest="resume", action="store_const", const=False,
                        help="delete OUTDIR/checkpoints and start afresh. Default: continue when the checkpoints "
                        "were made with the same settings, stop when not")  # fmt: skip
    parser.add_argument("--report-to", "--report_to", dest="report_to", help="none, wandb, tensorboard, ...")
    parser.add_argument("--device", help="auto, cpu or cuda. Default: auto")
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
    console.print(f"reward model written to [bold]{args.output_dir}[/] (use it: grape decode --reward DIR)")
    return 0
