"""`grape sft`: the command-line face of grape.training.sft.sft."""

from __future__ import annotations

import argparse

from grape.config import load_settings
from grape.console import console, print_table
from grape.training.objectives import OBJECTIVES
from grape.training.settings import SFTSettings

# The SFTSettings fields that have a flag. Every flag defaults to None ("not given"), so that a value in
# --config is kept unless the flag is given: defaults < config file < command line.
FLAGS = ("model", "template", "epochs", "max_steps", "lr", "batch_size", "grad_accum", "max_length", "lora_r",
         "precision", "seed", "save_steps", "report_to", "device", "eos", "resume", "padding_free", "loss")  # fmt: skip


def register(subparsers) -> None:
    defaults = SFTSettings()
    parser = subparsers.add_parser(
        "sft", help="fine-tune the target model on a selection (TRL SFTTrainer; loss on responses only)",
        description="Fine-tune on a selection (prompt/completion or messages rows) with TRL's SFTTrainer. The "
        "text is rendered with the scoring template, so the model trains on exactly what it was scored on; the "
        "loss falls on response tokens (and EOS) only. Settings: defaults < --config YAML < flags. OUTDIR gets a "
        "transformers model (LoRA merged), grape-sft.yaml (resolved settings) and checkpoints/ (a re-run resumes). "
        "Several GPUs: accelerate launch -m grape.cli sft ...",
    )  # fmt: skip
    parser.add_argument("selected", help="selection written by `grape select` (.jsonl or .parquet)")
    parser.add_argument("-o", "--output-dir", required=True, help="where the fine-tuned model is written")
    parser.add_argument("--config", help="YAML file of settings (the keys of grape-sft.yaml); flags win over it")
    parser.add_argument("--model", help=f"model to fine-tune (as for grape score). Default: {defaults.model}")
    parser.add_argument("--template", help="prompt template; use the one the selection was scored with. Default: paper")
    parser.add_argument("--epochs", type=float, help=f"passes over the selection. Default: {defaults.epochs:g}")
    parser.add_argument("--max-steps", type=int, help="optimizer steps; > 0 overrides --epochs")
    parser.add_argument("--lr", type=float, help="learning rate. Default: 2e-5, or 1e-4 with LoRA")
    parser.add_argument("--batch-size", type=int, help=f"examples per device per step. Default: {defaults.batch_size}")
    parser.add_argument("--grad-accum", type=int, help="gradient accumulation steps. Default: 1")
    parser.add_argument("--max-length", type=int, help="longest example in tokens (longer: error). Default: context")
    parser.add_argument("--loss", choices=list(OBJECTIVES), help="the objective. Default: nll. "
                        + "; ".join(f"{o.name}: {o.summary}" for o in OBJECTIVES.values()))  # fmt: skip
    parser.add_argument("--lora-r", type=int, help="LoRA rank (PEFT); 0 = full fine-tuning. Default: 0")
    parser.add_argument("--precision", choices=["auto", "bf16", "fp32"], help="auto: bf16 on a GPU, fp32 on CPU")
    parser.add_argument("--seed", type=int, help="seed of data order and initialisation. Default: 0")
    parser.add_argument("--save-steps", type=int, help=f"checkpoint every N steps. Default: {defaults.save_steps}")
    parser.add_argument("--report-to", help="none, wandb, tensorboard, ... (transformers' integrations)")
    parser.add_argument("--device", help="auto, cpu or cuda. Default: auto")
    parser.add_argument("--no-eos", dest="eos", action="store_const", const=False, help="do not train on EOS")
    parser.add_argument("--no-resume", dest="resume", action="store_const", const=False,
                        help="start afresh even if OUTDIR/checkpoints has a checkpoint")  # fmt: skip
    parser.add_argument("--no-padding-free", dest="padding_free", action="store_const", const=False,
                        help="pad each batch instead of packing it into one row")  # fmt: skip
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> SFTSettings:
    return load_settings(SFTSettings, args.config, {name: getattr(args, name) for name in FLAGS})


def run(args: argparse.Namespace) -> int:
    from grape.training.sft import sft

    result = sft(args.selected, args.output_dir, settings_from_args(args))
    m, s = result.metrics, result.settings
    print_table(
        "Fine-tuning",
        ["examples", "response tokens", "steps", "loss first", "loss last", "precision", "LoRA r", "seconds"],
        [(m["examples"], m["response_tokens"], m["steps"], m["loss_first"], m["loss_last"], s.precision,
          s.lora_r, m["seconds"])],
    )  # fmt: skip
    if m["resumed_from"]:
        console.print(f"resumed from {m['resumed_from']}")
    console.print(f"model written to [bold]{args.output_dir}[/]")
    return 0
