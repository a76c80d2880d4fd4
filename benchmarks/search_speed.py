"""iTool's search speed: two ways of running the same searches (seconds per question and the ratio).

  .venv/bin/python benchmarks/search_speed.py --questions 4 --rounds 3 --paths together,kept

The ways (--paths, the fast one first, then its baseline): ``together`` searches --at-once questions at a time,
their continuations sampled as one batch, each prompt's KV cache kept (`grape itool mcts`'s default);
``kept`` one question at a time with the kept prompt cache; ``whole`` one at a time, the whole context computed
on every call.

The questions are --questions rows with a gold call drawn (seed --seed) from BFCL's live_simple and
live_multiple, the BFCL experiment's training categories (../shared/data/bfcl, as `grape tools prepare` makes
them for --model; the hand-made conversations of the tests when the data is absent), searched
at the paper's settings (5 simulations, 3 continuations of <= 50 tokens an expansion, temperature 1.5, depth 3,
the tool-call judge) with each question's own seed, as `grape itool mcts` searches them. Each round searches
every question both ways, in rotated order; the two trees must hold the same steps and texts and the same
priors within 1e-4, or the script stops. Printed: seconds per question of each per round (median and
spread), the per-round ratio, the prompts' lengths in tokens, the context positions each generator computed,
the load average before and after every timing, and the machine.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
import zlib
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from measure import load_average, machine_state  # noqa: E402
from round_stats import per_round_ratios, ratio_refusal, rotated_order, spread_of  # noqa: E402

from grape.data.tables import write_rows  # noqa: E402
from grape.models.load import load_model  # noqa: E402
from grape.search.generator import Request  # noqa: E402
from grape.search.hf_generator import HFGenerator  # noqa: E402
from grape.search.mcts import Search, SearchRules, searches  # noqa: E402
from grape.search.rewards import verifier_reward  # noqa: E402
from grape.text import Renderer  # noqa: E402
from grape.tools.prepare import prepare  # noqa: E402

BFCL = Path(__file__).resolve().parents[2] / "shared" / "data" / "bfcl"
CATEGORIES = ("live_simple", "live_multiple")
WAYS = {"together": True, "kept": True, "whole": False}  # each way: whether the prompt's cache is kept


def questions(count: int, model: str, seed: int) -> tuple[list[dict], str]:
    """``count`` prepared rows with a gold call drawn under ``seed``: BFCL's live categories, else the tests'."""
    with tempfile.TemporaryDirectory() as folder:
        if all((BFCL / f"BFCL_v4_{c}.json").is_file() for c in CATEGORIES):
            rows = []
            for category in CATEGORIES:
                answers = BFCL / "possible_answer" / f"BFCL_v4_{category}.json"
                rows += prepare(BFCL / f"BFCL_v4_{category}.json", Path(folder) / f"{category}.jsonl",
                                answers=str(answers), model=model)[0]  # fmt: skip
            described = f"{count} rows of BFCL {' + '.join(CATEGORIES)} drawn with seed {seed}"
        else:
            from tool_rows import TRAJECTORIES

            conversations = write_rows(TRAJECTORIES, Path(folder) / "conversations.jsonl")
            rows, _ = prepare(conversations, Path(folder) / "rows.jsonl", model=model)
            described = f"{count} rows of the tests' conversations drawn with seed {seed} (BFCL data absent)"
    called = [r for r in rows if r.get("answer")]
    return random.Random(seed).sample(called, min(count, len(called))), described


def same_tree(a: Search, b: Search, tolerance: float = 1e-4) -> None:
    """Stop unless both searches made the same nodes (steps, places) with priors within ``tolerance``."""
    one, other = list(a.root.walk()), list(b.root.walk())
    if [(n.label(), n.step) for n in one] != [(n.label(), n.step) for n in other]:
        raise SystemExit("the two generators' searches made different trees")
    gap = max(abs(x.prior - y.prior) for x, y in zip(one, other, strict=True))
    if gap > tolerance:
        raise SystemExit(f"priors differ by {gap:.2e} > {tolerance:g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--questions", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0, help="the draw of the questions")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--simulations", type=int, default=5)
    parser.add_argument("--paths", type=lambda text: text.split(","), default=["together", "kept"],
                        help="two of together, kept, whole: the fast way, then its baseline")  # fmt: skip
    parser.add_argument("--at-once", type=int, default=4, help="questions searched together by `together`")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--json", type=Path, help="also write the summary here")
    args = parser.parse_args()
    if len(args.paths) != 2 or not set(args.paths) <= set(WAYS):
        raise SystemExit(f"--paths: two of {', '.join(WAYS)}")
    torch.set_num_threads(args.threads)
    loaded = load_model(args.model, "float32", "cpu")
    rows, source = questions(args.questions, args.model, args.seed)
    renderer = Renderer(loaded.tokenizer, "chat", eos=False)
    lengths = [len(renderer.generation_ids(row["prompt"])) for row in rows]
    generators = {path: HFGenerator(loaded, renderer, 50, 1.5, prompt_cache=WAYS[path]) for path in args.paths}
    at_once = {path: args.at_once if path == "together" else 1 for path in args.paths}
    rules = SearchRules(simulations=args.simulations, samples=3, max_depth=3)
    work = [(r["prompt"], r, zlib.crc32(str(r.get("id", i)).encode()) % 2**31) for i, r in enumerate(rows)]
    for path in args.paths:  # warm-up: one short call each
        generators[path].sample([Request(rows[0]["prompt"], "", 1, 0)])
    rounds = []
    for index in range(args.rounds):
        found, row = {}, {}
        for path in rotated_order(args.paths, index):
            generator = generators[path]
            before, fed = load_average(), generator.tokens_fed
            started = time.perf_counter()
            done = dict(searches(work, generator, verifier_reward, rules, at_once[path]))
            seconds = time.perf_counter() - started
            found[path] = [done[i] for i in range(len(work))]
            row[path] = {"seconds": seconds, "s_per_question": seconds / len(rows),
                         "calls": sum(f.generator_calls for f in found[path]),
                         "positions_computed": generator.tokens_fed - fed, "load_before": before,
                         "load_after": load_average()}  # fmt: skip
        for a, b in zip(*(found[path] for path in args.paths), strict=True):
            same_tree(a, b)
        rounds.append(row)
        print(json.dumps({"round": index, **row}), file=sys.stderr, flush=True)
    fast, base = ([r[path]["s_per_question"] for r in rounds] for path in args.paths)
    ratios = per_round_ratios(base, fast)  # how many times faster the first way is
    spreads = [spread_of(fast), spread_of(base), spread_of(ratios)]
    summary = {
        "benchmark": "search_speed", "model": args.model, "questions": source, "prompt_tokens": lengths,
        "simulations": args.simulations, "paths": args.paths, "at_once": args.at_once,
        "machine": machine_state(loaded.device), "rounds": rounds,
        f"{args.paths[0]}_s_per_question": spreads[0].as_dict(), f"{args.paths[1]}_s_per_question":
        spreads[1].as_dict(), "speedup": spreads[2].as_dict(), "ratio_refused": ratio_refusal(spreads),
        "trees_equal": True,
    }  # fmt: skip
    print(json.dumps(summary, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(
        f"{args.paths[0]} {spreads[0].brief()} s/question, {args.paths[1]} {spreads[1].brief()} s/question, "
        f"speed-up {spreads[2].brief()}x; trees equal in every round",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
