"""TL-Training and iTool on BFCL (issue 17): smollm2-135m-instruct trained on BFCL's live categories, tested on
simple_python + multiple. Design and pass criterion: experiments/bfcl/README.md. Each stage runs the `grape`
command a user would type (grape.cli.main); a finished stage is marked and skipped on a re-run, and the stages
resume inside (training from checkpoints), so the run is resumable at any point.

  .venv/bin/python experiments/bfcl/run.py --out /work/bfcl
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

from grape.data.tables import read_sidecar, write_sidecar
from grape.evaluation.metrics import mcnemar_exact, wilson_interval
from grape.tools.judge import EXTRA_CALL, HALLUCINATED_TOOL, MISSING_CALL, UNPARSABLE, WRONG_TOOL, Judgement
from grape.tools.verifier import judge

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/stages.py
from stages import grape_command as grape  # noqa: E402
from stages import once  # noqa: E402

BFCL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bfcl"
TRAIN = ("live_simple", "live_multiple")
TEST = ("simple_python", "multiple")
TOOL_CHOICE_ERRORS = {UNPARSABLE, HALLUCINATED_TOOL, WRONG_TOOL, MISSING_CALL, EXTRA_CALL}
# The pass criteria (README): each first arm beats the second on exact match, paired on the test rows.
CRITERIA = (("sft-pkt", "sft"), ("pkt-irm", "sft-pkt"), ("itool-step-pairs", "itool-sft-matched"),
            ("itool-step-pairs", "itool-answer-pairs"))  # fmt: skip


def prepared(args, categories: tuple[str, ...], per_category: int, name: str, seed: int) -> Path:
    """`grape tools prepare` of each category, ``per_category`` rows of each drawn under ``seed``, in one file
    with the first part's sidecar (model, template, format)."""
    out = args.out / "data" / f"{name}.jsonl"
    if out.exists():
        return out
    rows, sidecar = [], None
    for category in categories:
        part = args.out / "data" / f"{category}.jsonl"
        once(
            part.with_suffix(".done"),
            grape,
            "tools",
            "prepare",
            BFCL / f"BFCL_v4_{category}.json",
            "--answers",
            BFCL / "possible_answer" / f"BFCL_v4_{category}.json",
            "-o",
            part,
            "--weights",
            "key-tokens",
            "--model",
            args.model,
        )
        listed = [json.loads(line) for line in part.read_text().splitlines()]
        listed = [r for r in listed if r.get("completion") is not None]
        random.Random(seed).shuffle(listed)
        rows += listed[:per_category]
        sidecar = sidecar or read_sidecar(part)
    out.write_text("".join(json.dumps(row) + "\n" for row in rows))
    write_sidecar(out, sidecar)
    return out


def judged(answers: Path, test: Path) -> dict[str, Judgement]:
    """Each test item's judgement (the tool-call verifier) of the answer in ``answers`` (grape eval's output),
    by id; an answers file that does not hold exactly the test items stops the run."""
    items = {r["id"]: r for r in map(json.loads, test.read_text().splitlines())}
    outputs = [json.loads(line) for line in answers.read_text().splitlines()]
    if sorted(r["id"] for r in outputs) != sorted(items):
        raise SystemExit(f"{answers} does not hold the {len(items)} items of {test}: delete it and run again")
    return {row["id"]: judge(row.get("response") or "", items[row["id"]]) for row in outputs}


def measure(args, model: str, folder: Path, test: Path, template: str) -> dict:
    """Exact-match accuracy (the tool-call verifier, BFCL's rules), tool-selection accuracy and the error
    categories of the answers to the test rows."""
    done = folder / "metrics.json"
    if done.exists():
        return json.loads(done.read_text())
    answers = folder / "test.eval.jsonl"
    grape(
        "eval",
        "--data",
        test,
        "-o",
        answers,
        "--model",
        model,
        "--template",
        template,
        "--verifier",
        "tool-call",
        "--max-new-tokens",
        args.max_new_tokens,
        "--device",
        args.device,
    )
    categories, exact, tool_right = Counter(), 0, 0
    judgements = judged(answers, test)
    for judgement in judgements.values():
        exact += bool(judgement.correct)
        tool_right += not (set(judgement.problems) & TOOL_CHOICE_ERRORS)
        categories.update(judgement.problems.keys())
    n = len(judgements)
    metrics = {"items": n, "exact": exact, "accuracy": exact / n, "ci95": wilson_interval(exact, n),
               "tool_right": tool_right, "tool_accuracy": tool_right / n, "tool_ci95": wilson_interval(tool_right, n),
               "errors": dict(categories.most_common())}  # fmt: skip
    done.write_text(json.dumps(metrics, indent=1) + "\n")
    return metrics


def mcnemar(first: dict[str, Judgement], second: dict[str, Judgement]) -> dict:
    """grape's exact McNemar test of two arms' exact match on the same items; ``beats``: the first is right more
    often and p < 0.05."""
    right = [{i: bool(j.correct) for i, j in arm.items()} for arm in (first, second)]
    test = mcnemar_exact(*right)
    return {**test, "beats": test["only_first"] > test["only_second"] and test["p"] < 0.05}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--train-per-category", type=int, default=100)
    parser.add_argument("--test-per-category", type=int, default=100)
    parser.add_argument("--max-new-tokens", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    args = parser.parse_args()
    out, seed = args.out, str(args.seed)
    train = prepared(args, TRAIN, args.train_per_category, "train", 0)
    test = prepared(args, TEST, args.test_per_category, "test", 1)
    template = read_sidecar(train).get("score_settings", {}).get("template") or "chat"
    lora = ["--lora-r", "16", "--lr", "2e-4", "--batch-size", "8", "--device", args.device, "--seed", seed]
    model = {"base": args.model}

    def sft(name: str, data: Path, start: str, *extra: str) -> None:
        once(
            out / name / "done",
            grape,
            "sft",
            data,
            "-o",
            out / name,
            "--model",
            start,
            "--template",
            template,
            *lora,
            "--save-steps",  # a checkpoint every ~5 minutes of a CPU run: a session's end loses little
            "10",
            *extra,
        )
        model[name] = str(out / name)

    # TL-Training: SFT, SFT with key-token weights (PKT), then the error-category reward (IRM) by PPO
    sft("sft", train, args.model, "--epochs", "2")
    sft("sft-pkt", train, args.model, "--epochs", "2", "--loss", "weighted")
    once(
        out / "pkt-irm" / "done",
        grape,
        "rl",
        train,
        "-o",
        out / "pkt-irm",
        "--model",
        model["sft-pkt"],
        "--template",
        template,
        "--verifier",
        "tool-call",
        "--kl-coef",
        "0.4",
        "--aggregation",
        "token",
        "--rollout",
        "greedy",
        "--max-steps",
        "8",
        "--batch-size",
        "8",
        "--lora-r",
        "16",
        "--max-new-tokens",
        args.max_new_tokens,
        "--max-prompt-tokens",  # grape rl keeps a longer prompt's last 512 tokens: 79 of the 200 training
        "4096",  # prompts (tool docs up to 2,092 tokens) would lose their system turn and first tools
        "--device",
        args.device,
        "--seed",
        seed,
    )
    model["pkt-irm"] = str(out / "pkt-irm")
    # iTool: the warm-up from easy to hard, then one iteration on the worst-fitting rows
    ordered = out / "itool" / "ordered.jsonl"
    once(out / "itool" / "curriculum.done", grape, "itool", "curriculum", train, "-o", ordered)
    sft("itool-warmup", ordered, args.model, "--epochs", "1", "--trainer-arg", "train_sampling_strategy=sequential")
    weak = out / "itool" / "deficient.jsonl"
    once(
        out / "itool" / "deficiency.done",
        grape,
        "itool",
        "deficiency",
        train,
        "-o",
        weak,
        "--model",
        model["itool-warmup"],
    )
    for kind in ("step", "answer"):
        pairs = out / "itool" / f"pairs-{kind}.jsonl"
        once(
            out / "itool" / f"mcts-{kind}.done",
            grape,
            "itool",
            "mcts",
            weak,
            "-o",
            pairs,
            "--model",
            model["itool-warmup"],
            "--pairs",
            kind,
            "--seed",
            seed,
        )
        name = f"itool-{kind}-pairs"
        if not pairs.read_text().strip():  # the search found no pair with a gap: nothing to train, said in results
            print(f"{name}: the search found no pairs; the arm is not trained")
            continue
        once(
            out / name / "done",
            grape,
            "dpo",
            pairs,
            "-o",
            out / name,
            "--model",
            model["itool-warmup"],
            "--loss",
            "simpo",
            "--beta",
            "2.5",
            "--gamma",
            "0.5",
            "--epochs",
            "1",
            *lora,
        )
        model[name] = str(out / name)
    # compute-matched SFT: the warm-up model trained on the same deficient rows' gold answers, one epoch
    sft("itool-sft-matched", weak, model["itool-warmup"], "--epochs", "1")
    results = {name: measure(args, path, out / "eval" / name, test, template) for name, path in model.items()}
    for name, m in results.items():
        print(f"{name:18s} exact {m['accuracy']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]  tool choice "
              f"{m['tool_accuracy']:.3f}  errors {m['errors']}")  # fmt: skip
    criteria = {}
    for first, second in CRITERIA:
        if first not in results or second not in results:
            print(f"{first} against {second}: not judged ({first if first not in results else second} not trained)")
            continue
        paired = mcnemar(*(judged(out / "eval" / name / "test.eval.jsonl", test) for name in (first, second)))
        criteria[f"{first} > {second}"] = paired
        print(f"{first} > {second}: {paired['only_first']} against {paired['only_second']} items, exact McNemar "
              f"p = {paired['p']:.3g}: {'passes' if paired['beats'] else 'fails'}")  # fmt: skip
    (out / "results.json").write_text(json.dumps({"arms": results, "criteria": criteria}, indent=1) + "\n")


if __name__ == "__main__":
    main()
