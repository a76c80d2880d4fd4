"""`grape rl`: the command-line face of grape.rl.run.rl."""

from __future__ import annotations

import argparse

from grape.cli_options import add_config_option, add_model_options, add_resume_options, positive_int, settings_from_args
from grape.console import console, print_table
from grape.rl.aggregations import AGGREGATIONS
from grape.rl.settings import ALGORITHMS, ON_ERROR, ROLLOUTS, RLSettings
from grape.verification.registry import NAMES as VERIFIERS

# The RLSettings fields that have a flag; each flag defaults to None ("not given"): defaults < --config < flags.
FLAGS = ("algo", "num_generations", "model", "template", "eos", "dtype", "device", "trust_remote_code", "verifier",
         "prompt_column", "answer_column", "max_prompt_tokens", "max_new_tokens", "rollout", "batch_size",
         "mini_batch_size", "micro_batch_size", "ppo_epochs", "epochs", "max_steps", "kl_coef", "value_coef",
         "aggregation", "lr", "lora_r", "seed", "save_steps", "resume", "on_error")  # fmt: skip


EXAMPLES = """examples:
  grape rl svamp_train.jsonl -o runs/reft --model runs/sft --verifier number   # ReFT: PPO
  grape rl svamp_train.jsonl -o runs/grpo --model runs/sft --verifier number --algo grpo --num-generations 4
  grape rl bfcl_rows.jsonl -o runs/irm --model runs/sft --verifier tool-call    # TL-Training's reward"""


def register(subparsers) -> None:
    d = RLSettings()
    parser = subparsers.add_parser(
        "rl", help="reinforce a warm-up model with a verifier's reward (PPO with a value head as ReFT, or GRPO)",
        description="PPO on questions with gold answers (ReFT): one answer per question sampled at temperature 1, "
        "rewarded 1 if the verifier finds it right, 0.1 if it found an answer that is wrong, 0 if it found none; "
        "per-token KL penalty against the warm-up model; GAE on a value head; clipped policy and value losses. "
        "--algo grpo: TRL's GRPOTrainer with the same prompts and reward, --num-generations answers per question "
        "and advantages relative to the group. OUTDIR gets the trained model (LoRA merged), README.md (a model "
        "card), grape-rl.yaml (resolved settings), rl-history.jsonl and checkpoints/ (a re-run with the same "
        "settings resumes). Without --model: the model the questions' sidecar names, else the default; without "
        "--template: the one grape trained --model with, else the sidecar's, else paper. "
        "Settings: defaults < --config YAML < flags.",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("data", help="questions (.jsonl, .parquet, datasets directory): prompt and gold answer")
    parser.add_argument("-o", "--output-dir", required=True, help="where the trained model is written")
    add_config_option(parser)
    add_model_options(parser)
    parser.add_argument("--algo", choices=ALGORITHMS, help=f"ppo: our loop with a value head (ReFT); grpo: TRL's "
                        f"GRPOTrainer. Default: {d.algo}")  # fmt: skip
    parser.add_argument("--num-generations", type=int, help=f"GRPO: answers per question, the group its advantages "
                        f"are relative to. Default: {d.num_generations}")  # fmt: skip
    parser.add_argument("--verifier", help=f"{', '.join(VERIFIERS)}. Default: {d.verifier}")
    parser.add_argument("--prompt-column", help=f"the question (text or chat). Default: {d.prompt_column}")
    parser.add_argument("--answer-column", help=f"the gold answer's column. Default: {d.answer_column}")
    parser.add_argument("--max-prompt-tokens", type=positive_int, help="a longer prompt is an error (or left out "
                        f"with --on-error skip), never cut. Default: {d.max_prompt_tokens}")  # fmt: skip
    parser.add_argument("--on-error", choices=ON_ERROR, help="a row rl cannot use (a prompt over --max-prompt-tokens, "
                        "no prompt, no gold answer): fail stops at the first (default); skip leaves it out, counted "
                        "in grape-rl.json and the model card")  # fmt: skip
    parser.add_argument(
        "--max-new-tokens", type=positive_int, help=f"answers are cut here. Default: {d.max_new_tokens}"
    )
    parser.add_argument("--rollout", choices=ROLLOUTS, help="PPO's answers: sampled at temperature 1 (ReFT) or "
                        f"greedy (TL-Training). Default: {d.rollout}")  # fmt: skip
    parser.add_argument("--batch-size", type=positive_int, help=f"questions per rollout batch. Default: {d.batch_size}")
    parser.add_argument("--mini-batch-size", type=int, help="questions per optimizer step. Default: the whole batch")
    parser.add_argument(
        "--micro-batch-size",
        type=int,
        help="questions per forward/backward pass; gradients "
        "accumulate over a mini-batch (the same update, less memory). Default: the mini-batch",
    )
    parser.add_argument("--ppo-epochs", type=int, help=f"passes over each rollout batch (GRPO's μ). "
                        f"Default: {d.ppo_epochs}")  # fmt: skip
    parser.add_argument("--epochs", type=float, help=f"passes over the questions. Default: {d.epochs:g}")
    parser.add_argument("--max-steps", type=int, help="rollout batches; > 0 overrides --epochs")
    parser.add_argument("--kl-coef", type=float, help=f"β of the KL penalty (ReFT: 0.05 text, 0.01 programs). "
                        f"Default: {d.kl_coef}")  # fmt: skip
    parser.add_argument("--value-coef", type=float, help=f"weight of the value loss. Default: {d.value_coef:g}")
    parser.add_argument("--aggregation", choices=AGGREGATIONS,
                        help="sequence: mean of per-answer means (ReFT); token: mean over answer tokens")  # fmt: skip
    parser.add_argument("--lr", type=float, help="learning rate (constant). Default: 1e-6, or 1e-5 with LoRA")
    parser.add_argument("--lora-r", type=int, help="LoRA rank (PEFT); 0 = full fine-tuning. Default: 0")
    parser.add_argument("--seed", type=int, help=f"seed of question order and sampling. Default: {d.seed}")
    parser.add_argument("--save-steps", type=int, help=f"checkpoint every N batches. Default: {d.save_steps}")
    add_resume_options(parser)
    parser.set_defaults(run=run)


def rl_settings(args: argparse.Namespace) -> RLSettings:
    return settings_from_args(RLSettings, args, FLAGS)


def run(args: argparse.Namespace) -> int:
    from grape.rl.run import rl

    result = rl(args.data, args.output_dir, rl_settings(args))
    m, s = result.metrics, result.settings
    print_table(
        s.algo.upper(),
        ["steps", "reward first", "reward last", "right last", "KL last", "value loss last", "LoRA r", "lr",
         "seconds"],
        [(m["steps"], m["reward_first"], m["reward_last"], m["right_last"], m["kl_last"], m["value_loss_last"],
          s.lora_r, f"{s.lr:g}", m["seconds"])],
    )  # fmt: skip
    if result.skipped:
        console.print(f"{len(result.skipped)} rows left out (--on-error skip), listed in grape-rl.json")
    if m["resumed_from"]:
        console.print(f"resumed from {m['resumed_from']}")
    console.print(f"model written to [bold]{args.output_dir}[/] (model card: README.md)")
    return 0
