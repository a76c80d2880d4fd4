"""`grape sft`: the command-line face of grape.training.sft.sft."""

from __future__ import annotations

import argparse
import shlex
import sys

from grape.config import load_settings
from grape.console import console, print_table
from grape.training.objectives import OBJECTIVES
from grape.training.settings import SFTSettings, learning_rate
from grape.training.trainer_flags import (
    TRAINER_FLAGS,
    TrainedOn,
    add_adapter_flags,
    add_trainer_flags,
    flag_values,
    with_peft_rank,
)

# The SFTSettings fields that have a flag. Every flag defaults to None ("not given"), so that a value in
# --config is kept unless the flag is given: defaults < config file < command line. TRL's names of the same
# options (`trl sft --learning_rate ...`) are aliases of grape's.
FLAGS = (*TRAINER_FLAGS, "padding_free", "loss", "ift_lambda", "ift_gamma", "save")


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
    add_trainer_flags(parser, defaults, learning_rate, TrainedOn("the selection", "was", "examples", "example"))
    add_adapter_flags(parser, "trl.SFTConfig")
    parser.add_argument("--save-adapter", dest="save", action="store_const", const="both",
                        help="also write the PEFT adapter to OUTDIR/adapter (= --save both)")  # fmt: skip
    parser.add_argument("--loss", choices=list(OBJECTIVES), help="the objective. Default: nll. "
                        + "; ".join(f"{o.name}: {o.summary}" for o in OBJECTIVES.values()))  # fmt: skip
    parser.add_argument("--ift-lambda", type=float, help=f"--loss ift: λ, the share of the model's own "
                        f"prediction in a response token's input. Default: {defaults.ift_lambda}")  # fmt: skip
    parser.add_argument("--ift-gamma", type=float, help=f"--loss ift: γ, the discount of the later losses that "
                        f"weigh each token (0: all weights 1). Default: {defaults.ift_gamma}")  # fmt: skip
    parser.add_argument("--no-padding-free", dest="padding_free", action="store_const", const=False,
                        help="pad each batch instead of packing it into one row")  # fmt: skip
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> SFTSettings:
    return with_peft_rank(load_settings(SFTSettings, args.config, flag_values(args, FLAGS)), args)


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
    console.print(f"the model is in [bold]{args.output_dir}[/] (model card: README.md)")
    return 0
