"""`grape dpo`: the command-line face of grape.training.dpo.dpo. Flags mirror `grape sft`'s (and TRL's names)."""

from __future__ import annotations

import argparse
import shlex
import sys

from grape.config import load_settings
from grape.console import console, print_table
from grape.training.settings import PREFERENCE_LOSSES, DPOSettings, preference_learning_rate
from grape.training.trainer_flags import (
    TRAINER_FLAGS,
    TrainedOn,
    add_adapter_flags,
    add_trainer_flags,
    flag_values,
    with_peft_rank,
)

# The DPOSettings fields that have a flag; every flag defaults to None ("not given"): defaults < --config < flags.
FLAGS = (*TRAINER_FLAGS, "loss", "ref", "beta", "gamma", "save")


EXAMPLES = """examples:
  grape dpo pairs.jsonl -o runs/dpo --model runs/sft --use_peft
  grape dpo pairs.jsonl -o runs/simpo --model runs/sft --loss simpo --beta 2.5 --gamma 0.5
  grape dpo pairs.jsonl -o runs/dpo --model runs/sft --ref runs/sft-frozen --max-steps 100"""


def register(subparsers) -> None:
    defaults = DPOSettings()
    parser = subparsers.add_parser(
        "dpo", help="preference-train the target on chosen/rejected pairs (TRL: DPO, or SimPO)",
        description="Train on preference pairs (prompt/chosen/rejected rows, as `grape pairs` writes them) with "
        "TRL: DPO (DPOTrainer) or SimPO (TRL's experimental CPOTrainer). The pairs are rendered with the template "
        "they were scored with, so the model trains on exactly the tokens it scored. DPO's reference is the model "
        "before training (LoRA: the adapter disabled) or --ref; its log-probs come from grape's scoring engine, "
        "once, before training (OUTDIR/reference.parquet). Settings: defaults < --config YAML < flags. OUTDIR gets "
        "the model and/or the PEFT adapter (--save), README.md (a model card), grape-dpo.yaml (resolved settings) "
        "and checkpoints/ (a re-run with the same settings resumes).",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("pairs", help="pairs written by `grape pairs` (.jsonl or .parquet)")
    parser.add_argument("-o", "--output-dir", "--output_dir", dest="output_dir", required=True,
                        help="where the trained model is written")  # fmt: skip
    parser.add_argument("--config", help="YAML file of settings (the keys of grape-dpo.yaml); flags win over it")
    add_trainer_flags(
        parser, defaults, preference_learning_rate, TrainedOn("the pairs", "were", "pairs", "prompt + response")
    )
    add_adapter_flags(parser, "trl.DPOConfig (dpo) or CPOConfig (simpo)")
    parser.add_argument("--loss", choices=PREFERENCE_LOSSES, help="dpo (DPOTrainer, sigmoid loss, with a "
                        "reference) or simpo (length-normalised, no reference). Default: dpo")  # fmt: skip
    parser.add_argument("--ref", "--ref_model", dest="ref",
                        help="dpo's reference model. Default: the model before training")  # fmt: skip
    parser.add_argument("--beta", type=float, help="DPO's KL strength / SimPO's reward scale. Default: 0.1 (dpo), "
                        "2.0 (simpo)")  # fmt: skip
    parser.add_argument("--gamma", "--simpo_gamma", dest="gamma", type=float,
                        help=f"SimPO's target reward margin. Default: {defaults.gamma}")  # fmt: skip
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> DPOSettings:
    return with_peft_rank(load_settings(DPOSettings, args.config, flag_values(args, FLAGS)), args)


def run(args: argparse.Namespace) -> int:
    from grape.training.dpo import dpo

    command = shlex.join(["grape", *sys.argv[1:]]) if sys.argv[1:2] == ["dpo"] else None
    result = dpo(args.pairs, args.output_dir, settings_from_args(args), command=command)
    m, s = result.metrics, result.settings
    print_table(
        f"Preference training ({s.loss})",
        ["pairs", "steps", "loss first", "loss last", "reward accuracy", "LoRA r", "reference s", "seconds"],
        [(m["pairs"], m["steps"], m["loss_first"], m["loss_last"], m["reward_accuracy_last"], s.lora_r,
          "-" if m["reference_seconds"] is None else m["reference_seconds"], m["seconds"])],
    )  # fmt: skip
    if m["resumed_from"]:
        console.print(f"resumed from {m['resumed_from']}")
    console.print(f"the model is in [bold]{args.output_dir}[/] (model card: README.md)")
    return 0
