"""`grape dpo`: the command-line face of grape.training.dpo.dpo. Flags mirror `grape sft`'s (and TRL's names)."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace

from grape.config import load_settings
from grape.console import console, print_table
from grape.errors import GrapeError
from grape.models.embedded import DEFAULT_TARGET as DEFAULT_MODEL
from grape.training.settings import PEFT_DEFAULT_R, PREFERENCE_LOSSES, SAVE_CHOICES, DPOSettings
from grape.training.sft_config import parse_trainer_arg

# The DPOSettings fields that have a flag; every flag defaults to None ("not given"): defaults < --config < flags.
FLAGS = ("model", "template", "eos", "loss", "ref", "beta", "gamma", "epochs", "max_steps", "lr", "batch_size",
         "grad_accum", "max_length", "lora_r", "precision", "seed", "save_steps", "report_to", "device", "resume",
         "save")  # fmt: skip


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
    parser.add_argument("--model", "--model_name_or_path", dest="model",
                        help=f"model to train. Default: the one the pairs were scored with (their .meta.json), "
                        f"else {DEFAULT_MODEL}")  # fmt: skip
    parser.add_argument("--template", help="prompt template. Default: the pairs' scoring one, else paper")
    parser.add_argument("--no-eos", dest="eos", action="store_const", const=False, help="do not train on EOS")
    parser.add_argument("--loss", choices=PREFERENCE_LOSSES, help="dpo (DPOTrainer, sigmoid loss, with a "
                        "reference) or simpo (length-normalised, no reference). Default: dpo")  # fmt: skip
    parser.add_argument("--ref", "--ref_model", dest="ref",
                        help="dpo's reference model. Default: the model before training")  # fmt: skip
    parser.add_argument("--beta", type=float, help="DPO's KL strength / SimPO's reward scale. Default: 0.1 (dpo), "
                        "2.0 (simpo)")  # fmt: skip
    parser.add_argument("--gamma", "--simpo_gamma", dest="gamma", type=float,
                        help=f"SimPO's target reward margin. Default: {defaults.gamma}")  # fmt: skip
    parser.add_argument("--epochs", "--num_train_epochs", dest="epochs", type=float,
                        help=f"passes over the pairs. Default: {defaults.epochs:g}")  # fmt: skip
    parser.add_argument("--max-steps", "--max_steps", dest="max_steps", type=int,
                        help="optimizer steps; > 0 overrides --epochs")  # fmt: skip
    parser.add_argument("--lr", "--learning_rate", dest="lr", type=float,
                        help="learning rate. Default: 1e-6, or 1e-5 with LoRA")  # fmt: skip
    parser.add_argument("--batch-size", "--per_device_train_batch_size", dest="batch_size", type=int,
                        help=f"pairs per device per step. Default: {defaults.batch_size}")  # fmt: skip
    parser.add_argument("--grad-accum", "--gradient_accumulation_steps", dest="grad_accum", type=int,
                        help="gradient accumulation steps. Default: 1")  # fmt: skip
    parser.add_argument("--max-length", "--max_length", dest="max_length", type=int,
                        help="longest prompt + response in tokens (longer: error). Default: context")  # fmt: skip
    parser.add_argument("--lora-r", "--lora_r", dest="lora_r", type=int,
                        help="LoRA rank (PEFT); 0 = full fine-tuning. Default: 0")  # fmt: skip
    parser.add_argument("--use_peft", "--use-peft", dest="use_peft", action="store_true",
                        help=f"train a LoRA adapter: rank --lora_r, or {PEFT_DEFAULT_R} when none is set")  # fmt: skip
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], help="auto: bf16 on a GPU, fp32 on CPU")
    parser.add_argument("--seed", type=int, help="seed of data order and initialisation. Default: 0")
    parser.add_argument("--save-steps", "--save_steps", dest="save_steps", type=int,
                        help=f"checkpoint every N steps. Default: {defaults.save_steps}")  # fmt: skip
    parser.add_argument("--report-to", "--report_to", dest="report_to",
                        help="none, wandb, tensorboard, ... (transformers' integrations)")  # fmt: skip
    parser.add_argument("--device", help="auto, cpu or cuda. Default: auto")
    parser.add_argument("--save", choices=SAVE_CHOICES, help="merged: the model with LoRA folded in; adapter: the "
                        "PEFT adapter only, in OUTDIR/adapter; both. Default: merged")  # fmt: skip
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_const", const=True,
                        help="continue from OUTDIR/checkpoints even if they were made with other settings")  # fmt: skip
    resume.add_argument("--no-resume", dest="resume", action="store_const", const=False,
                        help="delete OUTDIR/checkpoints and start afresh")  # fmt: skip
    parser.add_argument("--trainer-arg", dest="trainer_args", action="append", metavar="KEY=VALUE",
                        help="any other field of trl.DPOConfig (dpo) or CPOConfig (simpo), e.g. max_grad_norm=0.5 "
                        "(repeatable; the value is read as YAML; applied last)")  # fmt: skip
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> DPOSettings:
    flags = {name: getattr(args, name) for name in FLAGS}
    flags["trainer"] = dict(parse_trainer_arg(text) for text in args.trainer_args) if args.trainer_args else None
    settings = load_settings(DPOSettings, args.config, flags)
    if args.use_peft:
        if args.lora_r == 0:
            raise GrapeError("--use_peft with --lora_r 0: give a positive rank, or drop --use_peft")
        if settings.lora_r == 0:
            return replace(settings, lora_r=PEFT_DEFAULT_R)
    return settings


def run(args: argparse.Namespace) -> int:
    from grape.training.dpo import dpo

    command = shlex.join(["grape", *sys.argv[1:]]) if sys.argv[1:2] == ["dpo"] else None
    result = dpo(args.pairs, args.output_dir, settings_from_args(args), command=command)
    m, s = result.metrics, result.settings
    print_table(
        f"Preference training ({s.loss})",
        ["pairs", "steps", "loss first", "loss last", "reward accuracy", "LoRA r", "reference s", "seconds"],
        [(m["pairs"], m["steps"], m["loss_first"], m["loss_last"], m["reward_accuracy_last"], s.lora_r,
          m["reference_seconds"], m["seconds"])],
    )  # fmt: skip
    if m["resumed_from"]:
        console.print(f"resumed from {m['resumed_from']}")
    console.print(f"model written to [bold]{args.output_dir}[/] (model card: README.md)")
    return 0
