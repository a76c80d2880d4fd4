"""`grape sft`: the command-line face of grape.training.sft.sft."""

from __future__ import annotations

import argparse
import shlex
import sys
from dataclasses import replace

from grape.config import load_settings
from grape.console import console, print_table
from grape.errors import GrapeError
from grape.models.embedded import DEFAULT_TARGET as DEFAULT_MODEL
from grape.training.objectives import OBJECTIVES
from grape.training.settings import PEFT_DEFAULT_R, SAVE_CHOICES, SFTSettings
from grape.training.sft_config import parse_trainer_arg

# The SFTSettings fields that have a flag. Every flag defaults to None ("not given"), so that a value in
# --config is kept unless the flag is given: defaults < config file < command line. TRL's names of the same
# options (`trl sft --learning_rate ...`) are aliases of grape's.
FLAGS = ("model", "template", "epochs", "max_steps", "lr", "batch_size", "grad_accum", "max_length", "lora_r",
         "precision", "seed", "save_steps", "report_to", "device", "eos", "resume", "padding_free", "loss",
         "ift_lambda", "ift_gamma", "save")  # fmt: skip


EXAMPLES = """examples:
  grape sft selected.jsonl -o runs/sft                       # model and template from the selection's sidecar
  grape sft selected.jsonl -o runs/sft --use_peft --lora-r 16 --max-steps 200 --lr 2e-4
  grape sft tool_rows.jsonl -o runs/tl --loss weighted       # TL-Training's key-token weights"""


def register(subparsers) -> None:
    defaults = SFTSettings()
    parser = subparsers.add_parser(
        "sft", help="fine-tune the target model on a selection (TRL SFTTrainer; loss on responses only)",
        description="Fine-tune on a selection (prompt/completion or messages rows) with TRL's SFTTrainer. The "
        "text is rendered with the scoring template, so the model trains on exactly what it was scored on; the "
        "loss falls on response tokens (and EOS) only. Settings: defaults < --config YAML < flags. OUTDIR gets a "
        "transformers model (LoRA merged, in the training dtype) and/or the PEFT adapter (--save), README.md (a "
        "model card), grape-sft.yaml (resolved settings) and checkpoints/ (a re-run with the same settings "
        "resumes). TRL's flag names work too (--model_name_or_path, --learning_rate, --use_peft, ...). "
        "Several GPUs: accelerate launch -m grape.cli sft ...",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("selected", help="selection written by `grape select` (.jsonl or .parquet)")
    parser.add_argument("-o", "--output-dir", "--output_dir", dest="output_dir", required=True,
                        help="where the fine-tuned model is written")  # fmt: skip
    parser.add_argument("--config", help="YAML file of settings (the keys of grape-sft.yaml); flags win over it")
    parser.add_argument("--model", "--model_name_or_path", dest="model",
                        help=f"model to fine-tune (as for grape score). Default: the one the selection was scored "
                        f"with (its .meta.json), else {DEFAULT_MODEL}")  # fmt: skip
    parser.add_argument("--template", help="prompt template. Default: the selection's scoring one, else paper")
    parser.add_argument("--epochs", "--num_train_epochs", dest="epochs", type=float,
                        help=f"passes over the selection. Default: {defaults.epochs:g}")  # fmt: skip
    parser.add_argument("--max-steps", "--max_steps", dest="max_steps", type=int,
                        help="optimizer steps; > 0 overrides --epochs")  # fmt: skip
    parser.add_argument("--lr", "--learning_rate", dest="lr", type=float,
                        help="learning rate. Default: 2e-5, or 1e-4 with LoRA")  # fmt: skip
    parser.add_argument("--batch-size", "--per_device_train_batch_size", dest="batch_size", type=int,
                        help=f"examples per device per step. Default: {defaults.batch_size}")  # fmt: skip
    parser.add_argument("--grad-accum", "--gradient_accumulation_steps", dest="grad_accum", type=int,
                        help="gradient accumulation steps. Default: 1")  # fmt: skip
    parser.add_argument("--max-length", "--max_length", dest="max_length", type=int,
                        help="longest example in tokens (longer: error). Default: context")  # fmt: skip
    parser.add_argument("--loss", choices=list(OBJECTIVES), help="the objective. Default: nll. "
                        + "; ".join(f"{o.name}: {o.summary}" for o in OBJECTIVES.values()))  # fmt: skip
    parser.add_argument("--ift-lambda", type=float, help=f"--loss ift: λ, the share of the model's own "
                        f"prediction in a response token's input. Default: {defaults.ift_lambda}")  # fmt: skip
    parser.add_argument("--ift-gamma", type=float, help=f"--loss ift: γ, the discount of the later losses that "
                        f"weigh each token (0: all weights 1). Default: {defaults.ift_gamma}")  # fmt: skip
    parser.add_argument("--lora-r", "--lora_r", dest="lora_r", type=int,
                        help="LoRA rank (PEFT); 0 = full fine-tuning. Default: 0")  # fmt: skip
    parser.add_argument("--use_peft", "--use-peft", dest="use_peft", action="store_true",
                        help=f"train a LoRA adapter (TRL's flag): rank --lora_r, or {PEFT_DEFAULT_R} "
                        "(TRL's default) when no rank is set")  # fmt: skip
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], help="auto: bf16 on a GPU, fp32 on CPU")
    parser.add_argument("--seed", type=int, help="seed of data order and initialisation. Default: 0")
    parser.add_argument("--save-steps", "--save_steps", dest="save_steps", type=int,
                        help=f"checkpoint every N steps. Default: {defaults.save_steps}")  # fmt: skip
    parser.add_argument("--report-to", "--report_to", dest="report_to",
                        help="none, wandb, tensorboard, ... (transformers' integrations)")  # fmt: skip
    parser.add_argument("--device", help="auto, cpu or cuda. Default: auto")
    parser.add_argument("--no-eos", dest="eos", action="store_const", const=False, help="do not train on EOS")
    parser.add_argument("--save", choices=SAVE_CHOICES,
                        help="merged: the model with LoRA folded in; adapter: the PEFT adapter only, in "
                        "OUTDIR/adapter; both. Default: merged")  # fmt: skip
    parser.add_argument("--save-adapter", dest="save", action="store_const", const="both",
                        help="also write the PEFT adapter to OUTDIR/adapter (= --save both)")  # fmt: skip
    resume = parser.add_mutually_exclusive_group()
    resume.add_argument("--resume", dest="resume", action="store_const", const=True,
                        help="continue from OUTDIR/checkpoints even if they were made with other settings")  # fmt: skip
    resume.add_argument("--no-resume", dest="resume", action="store_const", const=False,
                        help="delete OUTDIR/checkpoints and start afresh. Default: continue when the checkpoints "
                        "were made with the same settings, stop when not")  # fmt: skip
    parser.add_argument("--no-padding-free", dest="padding_free", action="store_const", const=False,
                        help="pad each batch instead of packing it into one row")  # fmt: skip
    parser.add_argument("--trainer-arg", dest="trainer_args", action="append", metavar="KEY=VALUE",
                        help="any other field of trl.SFTConfig, e.g. max_grad_norm=0.5 (repeatable; the value is "
                        "read as YAML; a `trainer:` mapping in --config does the same; applied last)")  # fmt: skip
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> SFTSettings:
    flags = {name: getattr(args, name) for name in FLAGS}
    flags["trainer"] = dict(parse_trainer_arg(text) for text in args.trainer_args) if args.trainer_args else None
    settings = load_settings(SFTSettings, args.config, flags)
    if args.use_peft:
        if args.lora_r == 0:
            raise GrapeError("--use_peft with --lora_r 0: give a positive rank, or drop --use_peft")
        if settings.lora_r == 0:
            return replace(settings, lora_r=PEFT_DEFAULT_R)
    return settings


def run(args: argparse.Namespace) -> int:
    from grape.training.sft import sft

    command = shlex.join(["grape", *sys.argv[1:]]) if sys.argv[1:2] == ["sft"] else None
    result = sft(args.selected, args.output_dir, settings_from_args(args), command=command)
    m, s = result.metrics, result.settings
    print_table(
        "Fine-tuning",
        ["examples", "response tokens", "steps", "loss first", "loss last", "precision", "LoRA r", "seconds"],
        [(m["examples"], m["response_tokens"], m["steps"], m["loss_first"], m["loss_last"], s.precision,
          s.lora_r, m["seconds"])],
    )  # fmt: skip
    if m["resumed_from"]:
        console.print(f"resumed from {m['resumed_from']}")
    console.print(f"model written to [bold]{args.output_dir}[/] (model card: README.md)")
    return 0
