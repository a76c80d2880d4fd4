"""TL-Training and iTool on BFCL (issue 17): smollm2-135m-instruct trained on BFCL's live categories, tested on
simple_python + multiple. Design and pass criterion: experiments/bfcl/README.md. Each stage runs the `grape`
command a user would type (grape.cli.main); a finished stage is marked and skipped on a re-run, and the stages
resume inside (training from checkpoints), so the run is resumable at any point. Started once per core, the
processes share the stages (experiments/stages.py: run_stages), one thread each:

  OMP_NUM_THREADS=1 .venv/bin/python experiments/bfcl/run.py --out /work/bfcl &
  OMP_NUM_THREADS=1 .venv/bin/python experiments/bfcl/run.py --out /work/bfcl
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
from collections import Counter
from pathlib import Path

from grape.data.tables import read_sidecar, write_sidecar
from grape.evaluation.metrics import mcnemar_exact, wilson_interval
from grape.tools.judge import EXTRA_CALL, HALLUCINATED_TOOL, MISSING_CALL, UNPARSABLE, WRONG_TOOL, Judgement
from grape.tools.verifier import judge

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # experiments/stages.py
from stages import Stage, once, run_stages  # noqa: E402
from stages import grape_command as grape  # noqa: E402

BFCL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "bfcl"
RESULTS = Path(__file__).resolve().parent / "results"  # each arm's metrics.json and answers, committed
TRAIN = ("live_simple", "live_multiple")
TEST = ("simple_python", "multiple")
TOOL_CHOICE_ERRORS = {UNPARSABLE, HALLUCINATED_TOOL, WRONG_TOOL, MISSING_CALL, EXTRA_CALL}
ARMS = ("base", "sft", "sft-pkt", "pkt-irm", "itool-warmup", "itool-step-pairs", "itool-answer-pairs",
        "itool-sft-matched")  # fmt: skip
UNTRAINED = "untrained.txt"  # in an arm's folder: why it has no model (a search that found no pairs)
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
    parser.add_argument("--results", type=Path, default=RESULTS, help="where each evaluation is kept (committed)")
    args = parser.parse_args()
    for kept in sorted(args.results.glob("*/metrics.json")):  # evaluations kept in the repository from earlier machines
        folder = args.out / "eval" / kept.parent.name
        if not (folder / "metrics.json").exists():
            shutil.copytree(kept.parent, folder, dirs_exist_ok=True)
            (folder / "done").write_text(json.dumps({"kept_from": str(kept.parent)}) + "\n")  # its stage's marker
    run_stages(stages(args), args.out / "claims")
    summarise(args)


def summarise(args) -> None:
    """Each arm's metrics, and each pass criterion tested on the paired test items, into results.json."""
    out, test = args.out, args.out / "data" / "test.jsonl"
    results = {name: json.loads((out / "eval" / name / "metrics.json").read_text()) for name in ARMS}
    for name, m in results.items():
        if "untrained" in m:
            print(f"{name:18s} not trained: {m['untrained']}")
            continue
        print(f"{name:18s} exact {m['accuracy']:.3f} [{m['ci95'][0]:.3f}, {m['ci95'][1]:.3f}]  tool choice "
              f"{m['tool_accuracy']:.3f}  errors {m['errors']}")  # fmt: skip
    criteria = {}
    for first, second in CRITERIA:
        missing = [name for name in (first, second) if "untrained" in results[name]]
        if missing:
            print(f"{first} against {second}: not judged ({', '.join(missing)} not trained)")
            continue
        paired = mcnemar(*(judged(out / "eval" / name / "test.eval.jsonl", test) for name in (first, second)))
        criteria[f"{first} > {second}"] = paired
        print(f"{first} > {second}: {paired['only_first']} against {paired['only_second']} items, exact McNemar "
              f"p = {paired['p']:.3g}: {'passes' if paired['beats'] else 'fails'}")  # fmt: skip
    (out / "results.json").write_text(json.dumps({"arms": results, "criteria": criteria}, indent=1) + "\n")


def stages(args) -> list[Stage]:
    """Every stage of the run, most urgent first (the longest chains start first when two processes share it)."""
    out, seed = args.out, str(args.seed)
    data = {"train": out / "data" / "train.jsonl", "test": out / "data" / "test.jsonl"}
    # gradient checkpointing: two trainings share this machine's 23 GB (one SFT step of ~3,300 tokens kept 13 GB
    # of activations and logits without it); the same gradients, one more forward pass per step
    lora = ["--lora-r", "16", "--lr", "2e-4", "--batch-size", "8", "--device", args.device, "--seed", seed,
            "--gradient-checkpointing"]  # fmt: skip
    model = {"base": args.model, **{name: str(out / name) for name in ARMS if name != "base"}}
    ordered, weak = out / "itool" / "ordered.jsonl", out / "itool" / "deficient.jsonl"

    def template() -> str:
        return read_sidecar(data["train"]).get("score_settings", {}).get("template") or "chat"

    def prepare() -> None:
        prepared(args, TRAIN, args.train_per_category, "train", 0)
        prepared(args, TEST, args.test_per_category, "test", 1)

    def sft(name: str, data_file: Path, start: str, after: tuple[str, ...], *extra: str) -> Stage:
        def work() -> None:  # a checkpoint every ~5 minutes of a CPU run: a session's end loses little
            # --resume: sft-pkt's first 10 steps ran without gradient checkpointing (the same gradients)
            grape("sft", data_file, "-o", out / name, "--model", start, "--template", template(), *lora,
                  "--save-steps", "10", "--resume", *extra)  # fmt: skip

        return Stage(f"train:{name}", out / name / "done", work, after)

    def ppo() -> None:
        # grape rl keeps a longer prompt's last 512 tokens: 79 of the 200 training prompts (tool docs up to 2,092
        # tokens) would lose their system turn and first tools, hence --max-prompt-tokens 4096; a rollout at a time
        # through the model (the same update as the batch of 8 at once) keeps the backward pass's memory to one row;
        # a checkpoint after every batch (a batch costs minutes here; the default, every 20, is after the last)
        grape("rl", data["train"], "-o", out / "pkt-irm", "--model", model["sft-pkt"], "--template", template(),
              "--verifier", "tool-call", "--kl-coef", "0.4", "--aggregation", "token", "--rollout", "greedy",
              "--max-steps", "8", "--batch-size", "8", "--micro-batch-size", "1", "--lora-r", "16",
              "--max-new-tokens", args.max_new_tokens, "--max-prompt-tokens", "4096", "--save-steps", "1",
              "--device", args.device, "--seed", seed)  # fmt: skip

    def search(kind: str) -> None:  # one search: the second kind reads its pairs from the first's kept trees
        grape("itool", "mcts", weak, "-o", out / "itool" / f"pairs-{kind}.jsonl", "--model", model["itool-warmup"],
              "--pairs", kind, "--seed", seed, "--trees", out / "itool" / "searches.jsonl")  # fmt: skip

    def simpo(kind: str) -> None:
        pairs = out / "itool" / f"pairs-{kind}.jsonl"
        if not pairs.read_text().strip():  # the search found no pair with a gap: nothing to train, said in results
            print(f"itool-{kind}-pairs: the search found no pairs; the arm is not trained")
            (out / f"itool-{kind}-pairs" / UNTRAINED).write_text("the search found no pairs\n")
            return
        # TRL's DPO pads each batch of pairs and computes logits at every position: 2 pairs a pass, 4 passes a step
        grape("dpo", pairs, "-o", out / f"itool-{kind}-pairs", "--model", model["itool-warmup"], "--loss", "simpo",
              "--beta", "2.5", "--gamma", "0.5", "--epochs", "1", *lora, "--batch-size", "2",
              "--grad-accum", "4")  # fmt: skip

    def evaluation(name: str) -> Stage:
        def work() -> None:
            if (out / name / UNTRAINED).exists():  # no model to evaluate: the reason stands in for the metrics
                folder = out / "eval" / name
                folder.mkdir(parents=True, exist_ok=True)
                reason = (out / name / UNTRAINED).read_text().strip()
                (folder / "metrics.json").write_text(json.dumps({"untrained": reason}) + "\n")
                return
            measure(args, model[name], out / "eval" / name, data["test"], template())
            shutil.copytree(out / "eval" / name, args.results / name, dirs_exist_ok=True)  # survives the machine

        # the marker is not metrics.json: run_stages writes its marker after the work, over what it names
        return Stage(f"eval:{name}", out / "eval" / name / "done", work,
                     ("prepare",) if name == "base" else (f"train:{name}",))  # fmt: skip

    itool = out / "itool"
    return [
        Stage("prepare", out / "data" / "prepared.done", prepare),
        # iTool: the warm-up from easy to hard, then one iteration on the worst-fitting rows
        Stage(
            "curriculum",
            itool / "curriculum.done",
            lambda: grape("itool", "curriculum", data["train"], "-o", ordered),
            ("prepare",),
        ),  # fmt: skip
        sft(
            "itool-warmup",
            ordered,
            args.model,
            ("curriculum",),
            "--epochs",
            "1",
            "--trainer-arg",
            "train_sampling_strategy=sequential",
        ),  # fmt: skip
        # TL-Training: SFT with key-token weights (PKT), then the error-category reward (IRM) by PPO
        sft("sft-pkt", data["train"], args.model, ("prepare",), "--epochs", "2", "--loss", "weighted"),
        # evaluations early where they finish a result: a session's end loses the run's folder, not results/
        evaluation("itool-warmup"),
        Stage(
            "deficiency",
            itool / "deficiency.done",
            lambda: grape("itool", "deficiency", data["train"], "-o", weak, "--model", model["itool-warmup"]),
            ("train:itool-warmup",),
        ),  # fmt: skip
        Stage("train:pkt-irm", out / "pkt-irm" / "done", ppo, ("train:sft-pkt",)),
        Stage("mcts:step", itool / "mcts-step.done", lambda: search("step"), ("deficiency",)),
        evaluation("sft-pkt"),
        evaluation("pkt-irm"),
        Stage("mcts:answer", itool / "mcts-answer.done", lambda: search("answer"), ("mcts:step",)),
        Stage("train:itool-step-pairs", out / "itool-step-pairs" / "done", lambda: simpo("step"), ("mcts:step",)),
        Stage(
            "train:itool-answer-pairs", out / "itool-answer-pairs" / "done", lambda: simpo("answer"), ("mcts:answer",)
        ),  # fmt: skip
        # compute-matched SFT: the warm-up model trained on the same deficient rows' gold answers, one epoch
        sft("itool-sft-matched", weak, model["itool-warmup"], ("deficiency",), "--epochs", "1"),
        *(evaluation(name) for name in ("itool-step-pairs", "itool-sft-matched", "itool-answer-pairs", "base")),
        sft("sft", data["train"], args.model, ("prepare",), "--epochs", "2"),
        evaluation("sft"),
    ]


if __name__ == "__main__":
    main()
