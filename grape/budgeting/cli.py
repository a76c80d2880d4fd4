"""`grape budget`: the command-line face of grape.budgeting.run.budget.

The budget's own settings have flags; the training and evaluation settings are the nested ``sft:``, ``dpo:`` and
``eval:`` mappings of ``--config`` (the keys of grape-sft.yaml, grape-dpo.yaml and `grape eval`'s config), and
``--set SECTION.KEY=VALUE`` sets one of them from the command line: defaults < --config < --set < flags.
"""

from __future__ import annotations

import argparse
from typing import Any

import yaml

from grape.budgeting.settings import DEFAULT_SHARES, BudgetSettings
from grape.config import read_yaml, settings_from_dict
from grape.console import console, print_table
from grape.errors import GrapeError

FLAGS = ("budget", "shares", "pair_cost", "seeds", "model", "template", "eos", "keep_models")

EXAMPLES = """examples:
  grape budget selected.jsonl pairs.jsonl --data test.jsonl -o runs/budget --budget 256 --seeds 0,1,2
  grape budget selected.jsonl pairs.jsonl --data test.jsonl -o runs/budget --budget 128 --shares 0,0.05,1 \\
      --pair-cost 2 --set sft.max_steps=50 --set dpo.lora_r=16 --set eval.verifier=number
  grape budget selected.jsonl pairs.jsonl --data test.jsonl -o runs/budget --config budget.yaml --heldout dev.jsonl"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "budget", help="SFT then DPO under a fixed data budget: one trained and evaluated model per SFT share and seed",
        description="Spend a budget of B units per cell on SFT examples (1 unit each) and preference pairs "
        "(--pair-cost units each): share f buys round(f*B) SFT examples and floor((B - that)/cost) pairs, drawn "
        "from the two pools as disjoint sets of instructions (seeded). Each cell runs SFT from the base model "
        "(none when f = 0), then DPO from the SFT model (from the base model when f = 0; none when no pair is "
        "left), then grape eval; OUTDIR/results.jsonl gets one row per cell (counts, instruction hashes, accuracy "
        "with its 95% interval, answer-format rate, held-out log-likelihood with --heldout) and OUTDIR/summary.md "
        "the mean over seeds by share. A re-run skips finished cells (docs/budget.md).",
        epilog=EXAMPLES,
    )  # fmt: skip
    parser.add_argument("sft_pool", help="SFT rows (prompt/completion or messages), as `grape select` writes them")
    parser.add_argument("pairs", help="preference pairs (prompt/chosen/rejected), as `grape pairs` writes them")
    parser.add_argument("--data", required=True, help="items to evaluate each cell's model on (as for grape eval)")
    parser.add_argument("-o", "--output-dir", dest="output_dir", required=True,
                        help="folder of the cells, results.jsonl and summary.md")  # fmt: skip
    parser.add_argument("--config", help="YAML file of settings (the keys of grape-budget.yaml, with sft:, dpo: "
                        "and eval: mappings); --set and flags win over it")  # fmt: skip
    parser.add_argument("--budget", type=int, help="units each cell spends (an SFT example costs 1)")
    parser.add_argument("--shares", type=_floats, help="SFT shares f, comma separated, one cell each. Default: "
                        + ",".join(f"{share:g}" for share in DEFAULT_SHARES))  # fmt: skip
    parser.add_argument("--pair-cost", type=float, help="units one pair costs. Default: 1")
    parser.add_argument("--seeds", type=_ints, help="seeds, comma separated: each draws and trains anew. Default: 0")
    parser.add_argument("--model", help="the base model every cell starts from. Default: the one the SFT pool was "
                        "scored with (its .meta.json), else gemma-3-270m")  # fmt: skip
    parser.add_argument("--template", help="prompt template of every stage. Default: the SFT pool's scoring one")
    parser.add_argument("--no-eos", dest="eos", action="store_const", const=False, help="do not train on EOS")
    parser.add_argument("--drop-models", dest="keep_models", action="store_const", const=False,
                        help="delete each finished cell's model weights and checkpoints (its metrics, settings and "
                        "eval outputs stay); a 270M model is about 1 GB in fp32, and a cell may hold two")  # fmt: skip
    parser.add_argument("--heldout", help="prompt/completion rows whose responses each final model scores: the "
                        "held-out log-likelihood (mean log-prob per response token)")  # fmt: skip
    parser.add_argument("--set", dest="set", action="append", metavar="SECTION.KEY=VALUE",
                        help="one setting of sft, dpo or eval, e.g. sft.max_steps=50 or eval.verifier=number "
                        "(repeatable; the value is read as YAML)")  # fmt: skip
    parser.set_defaults(run=run)


def settings_from_args(args: argparse.Namespace) -> BudgetSettings:
    data = read_yaml(args.config) if args.config else {}
    for text in args.set or []:
        path, value = _assignment(text)
        holder = data
        for part in path[:-1]:  # sft.trainer.max_grad_norm=0.5 sets one key of a nested mapping
            inner = holder.get(part)
            holder[part] = dict(inner) if isinstance(inner, dict) else {}
            holder = holder[part]
        holder[path[-1]] = value
    data.update({name: getattr(args, name) for name in FLAGS if getattr(args, name) is not None})
    return settings_from_dict(BudgetSettings, data, str(args.config or "settings"))


def run(args: argparse.Namespace) -> int:
    from grape.budgeting.run import budget

    rows = budget(args.sft_pool, args.pairs, args.data, args.output_dir, settings_from_args(args),
                  heldout=args.heldout)  # fmt: skip
    print_table(
        "Budget cells",
        ["share", "seed", "SFT examples", "pairs", "accuracy", "95% CI", "format rate", "held-out log-prob"],
        [(f"{r['share']:g}", r["seed"], r["n_sft"], r["n_pairs"], _percent(r["accuracy"]),
          f"{100 * r['ci95'][0]:.1f}–{100 * r['ci95'][1]:.1f}%", _percent(r["format_rate"]),
          "" if r.get("heldout_mean_logprob") is None else f"{r['heldout_mean_logprob']:.3f}") for r in rows],
    )  # fmt: skip
    console.print(f"results written to [bold]{args.output_dir}/results.jsonl[/] and summary.md")
    return 0


def _assignment(text: str) -> tuple[list[str], Any]:
    key, equals, raw = text.partition("=")
    path = key.strip().split(".")
    if not equals or len(path) < 2 or path[0] not in ("sft", "dpo", "eval") or not all(path):
        raise GrapeError(f"--set {text!r}: expected sft.KEY=VALUE, dpo.KEY=VALUE or eval.KEY=VALUE")
    try:
        return path, yaml.safe_load(raw)
    except yaml.YAMLError:
        return path, raw


def _floats(text: str) -> list[float]:
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, e.g. 0,0.05,1: {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. 0,1,2: {text!r}") from None


def _percent(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"
