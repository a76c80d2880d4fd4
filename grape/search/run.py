"""`grape itool mcts`: the search over every row's partial answers, written as preference pairs for `grape dpo`.

Input: tool-calling rows (`grape tools prepare`, usually the deficient ones of `grape itool deficiency`), each
with ``prompt`` and its gold ``answer``. Output: TRL's ``prompt``/``chosen``/``rejected`` rows that
``grape dpo --loss simpo`` trains on, with ``id`` (the question's, ``@`` the node's place), the values, visits
and the value gap of the two, and the question's ``answer``.

**The prompt of a step pair** is the row's prompt rendered by its template (the chat template's text, say)
followed by the shared prefix, the partial answer above the two steps, as one string; chosen and rejected are
the two steps' texts. The sidecar tells `grape dpo` to train them with ``template: raw`` and ``eos: false``, so
that the ids it trains are the whole text's tokens of ``prompt + prefix + step``: what the policy continued
from. A step that ends the answer (the model wrote its end marker after it) carries the end marker's text
(``<|im_end|>``, or EOS), which the tokenizer reads as that token; any other step has no end. Whole-answer pairs
(``pairs: answer``) are written the same way with an empty prefix.

Each question's search is kept in a trees file (``<output>.trees.jsonl``, or the ``trees`` setting's):
a killed run resumes from it, and a run with other pair rules or ``pairs: answer`` reads its pairs from the
trees already searched instead of searching again (grape.search.trees_file).

Every row is accounted for: questions without a pair are listed in the sidecar with the reason and the
terminal rewards of the answers the search judged, and the summary counts the judged answers by reward, so
that "no pair" can be told apart as "every answer wrong" or "every answer right".
"""

from __future__ import annotations

import time
import zlib
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.console import console, progress_bar
from grape.data.tables import read_sidecar, read_table_rows, write_rows, write_sidecar
from grape.errors import GrapeError, InputError
from grape.models.load import LoadedModel, load_model
from grape.search.hf_generator import HFGenerator
from grape.search.mcts import Search, SearchRules, searches
from grape.search.pairs import AnswerPair, PairRules, StepPair, answer_pair, step_pairs
from grape.search.rewards import Judge, irm_reward, verifier_reward
from grape.search.settings import MCTSSettings, check_mcts, with_row_defaults
from grape.search.trees_file import TreesFile, question_key, read_trees, search_key, trees_path
from grape.text import PromptError, Renderer
from grape.tools.calls import GoldError, read_gold

Row = dict[str, Any]


def mcts(input: str | Path | list[Row], output: str | Path | None = None, settings: MCTSSettings | None = None,
         loaded: LoadedModel | None = None, **overrides: Any) -> tuple[list[Row], dict[str, Any]]:  # fmt: skip
    """Search every row and return (pair rows, summary); write them (JSONL) and the sidecar if asked.

    ``overrides`` set fields of `MCTSSettings`, e.g. ``mcts("deficient.jsonl", "pairs.jsonl", simulations=5)``.
    """
    settings = with_overrides(MCTSSettings, settings, overrides)
    check_mcts(settings)
    started = time.time()
    name = "rows" if isinstance(input, list) else str(input)
    meta = {} if isinstance(input, list) else read_sidecar(input)
    settings = with_row_defaults(settings, meta)
    if loaded is None and not settings.model:
        raise GrapeError(f"{name}: no model to search with: give --model (the rows' sidecar names none)")
    rows = input if isinstance(input, list) else read_table_rows(input)
    loaded = loaded or load_model(settings.model or "", settings.dtype, settings.device, settings.trust_remote_code)
    template = settings.template or ("chat" if getattr(loaded.tokenizer, "chat_template", None) else "paper")
    settings = replace(settings, template=template)
    renderer = Renderer(loaded.tokenizer, template, eos=False)
    end_text = Renderer(loaded.tokenizer, template, eos=True).end_text or loaded.tokenizer.eos_token
    generator = HFGenerator(loaded, renderer, settings.max_new_tokens, settings.temperature)
    judge = _judge(settings, loaded)
    rules = SearchRules(settings.simulations, settings.samples, settings.max_depth, tuple(settings.separators),
                        settings.fragments_per_step, settings.exploration)  # fmt: skip
    pair_rules = PairRules(settings.min_gap, settings.min_chosen, settings.max_overlap)
    key = search_key(loaded, settings)
    trees = trees_path(output, settings.trees)
    kept = read_trees(trees, key)
    made: list[Row] = []
    without: list[Row] = []
    left_out: Counter[str] = Counter()
    judged: Counter[str] = Counter()
    calls = 0
    prompts = [_prompt_text(renderer, row, name, number) for number, row in enumerate(rows, start=1)]
    idents = [str(row.get("id", number)) for number, row in enumerate(rows, start=1)]
    questions = [question_key(ident, row) for ident, row in zip(idents, rows, strict=True)]
    found = {number: kept[q] for number, q in enumerate(questions) if q in kept}
    reused = len(found)
    pending = [number for number in range(len(rows)) if number not in found]
    with progress_bar() as bar, TreesFile(trees, key) as trees_file:
        task = bar.add_task("search", total=len(rows), completed=reused, rate="")
        if kept:
            console.print(f"{reused} of {len(rows)} questions' searches kept in {trees} under this model and settings")
        work = [(rows[n]["prompt"], rows[n], _seed(settings.seed, idents[n])) for n in pending]
        for place, searched in searches(work, generator, judge, rules, settings.questions_at_once):
            number = pending[place]
            found[number] = searched
            trees_file.record(questions[number], searched)
            bar.update(task, advance=1, rate=f"{len(found) - reused} searched")
    for number, (ident, row) in enumerate(zip(idents, rows, strict=True)):
        outcome = _pairs_of(found[number], ident, prompts[number], row, pair_rules, settings.pairs, end_text)
        calls += found[number].generator_calls
        left_out.update(outcome["left_out"])
        judged.update(_reward_keys(outcome["rewards"]))
        made += outcome["pairs"]
        if outcome["without"] is not None:
            without.append({"id": ident, "row": number + 1, "reason": outcome["without"],
                            "rewards": outcome["rewards"]})  # fmt: skip
    summary = {"questions": len(rows), "pairs": len(made), "questions_without_pair": len(without),
               "pairs_left_out": dict(left_out), "judged_answers": _by_reward(judged), "generator_calls": calls,
               "questions_from_kept_trees": reused, "seconds": round(time.time() - started, 2)}  # fmt: skip
    if output is not None:
        write_rows(made, output)
        write_sidecar(output, {
            "stage": "itool-mcts", "input": name, "settings": asdict(settings), "summary": summary,
            "model": loaded.identity, "questions_without_pair": without,
            **({"trees": str(trees)} if trees is not None else {}),
            # how `grape dpo` renders these rows: the prompt already holds the template's text and the prefix
            "score_settings": {"model": settings.model, "template": "raw", "eos": False},
        })  # fmt: skip
    if not made:
        console.print(f"[yellow]warning:[/] no pair kept from {len(rows)} questions ({dict(left_out)})")
    return made, summary


def _pairs_of(found: Search, ident: str, prompt_text: str, row: Row, rules: PairRules, level: str,
              end_text: str | None) -> dict[str, Any]:  # fmt: skip
    """A searched question's pair rows, why it has none (or None), the pairs left out and the judged rewards."""
    if level == "step":
        kept, reasons = step_pairs(found.root, rules)
        pairs = [step_pair_row(ident, prompt_text, p, end_text, row) for p in kept]
    else:
        outcome = answer_pair(found, rules)
        kept, reasons = ([outcome], []) if isinstance(outcome, AnswerPair) else ([], [outcome])
        pairs = [answer_pair_row(ident, prompt_text, p, end_text, row) for p in kept]
    why = None if pairs else (dict(Counter(reasons)) or {"no node with two children": 1})
    return {"pairs": pairs, "without": why, "left_out": list(reasons),
            "rewards": [rollout.reward for rollout in found.rollouts]}  # fmt: skip


def _reward_keys(rewards: list[float]) -> list[str]:
    """The judge's rewards as the keys of the sidecar's count of judged answers (4 decimals)."""
    return [f"{reward:.4g}" for reward in rewards]


def _by_reward(judged: Counter[str]) -> dict[str, int]:
    """How many judged answers got each terminal reward, highest reward first."""
    return dict(sorted(judged.items(), key=lambda item: -float(item[0])))


def _judge(settings: MCTSSettings, loaded: LoadedModel) -> Judge:
    if settings.judge == "self-eval":
        from grape.search.self_eval import SelfEvalJudge

        return SelfEvalJudge(loaded, settings.template or "paper")
    return irm_reward if settings.judge == "irm" else verifier_reward


def _prompt_text(renderer: Renderer, row: Row, file: str, number: int) -> str:
    """The row's prompt as its template renders it, after checking that it has a gold answer to reward against."""
    try:
        return renderer.prompt_text(_readable(row, file, number))
    except PromptError as exc:
        raise InputError(file, number, "prompt", str(exc)) from exc


def _readable(row: Row, file: str, number: int) -> Any:
    """The row's prompt, after checking that it has a gold answer the search can reward against."""
    if row.get("prompt") is None:
        raise InputError(file, number, "prompt", "missing: the search continues the row's prompt")
    if row.get("answer") is None:
        raise InputError(file, number, "answer", "missing: the search rewards agreement with the gold calls")
    try:
        read_gold(row["answer"])
    except GoldError as exc:
        raise InputError(file, number, "answer", str(exc)) from exc
    return row["prompt"]


def _seed(seed: int, ident: str) -> int:
    """A question's first generator seed: its own stream, the same on every run."""
    return (seed * 1_000_003 + zlib.crc32(ident.encode("utf-8"))) % 2**31


def _ending(text: str, finished: bool, end_text: str | None) -> str:
    return text + (end_text or "") if finished else text


def step_pair_row(ident: str, prompt_text: str, pair: StepPair, end_text: str | None, row: Row) -> Row:
    """A step pair as a row `grape dpo` reads: the prompt text and the shared prefix, then the two steps."""
    chosen, rejected = pair.chosen, pair.rejected
    return {"id": f"{ident}@{pair.parent.label()}", "question": ident, "level": "step",
            "prompt": prompt_text + pair.parent.text(),
            "chosen": _ending(chosen.step, chosen.finished, end_text),
            "rejected": _ending(rejected.step, rejected.finished, end_text),
            "depth": pair.parent.depth, "chosen_value": chosen.value, "rejected_value": rejected.value,
            "chosen_visits": chosen.visits, "rejected_visits": rejected.visits,
            "margin": chosen.value - rejected.value, "answer": row["answer"]}  # fmt: skip


def answer_pair_row(ident: str, prompt_text: str, pair: AnswerPair, end_text: str | None, row: Row) -> Row:
    """A whole-answer pair as a row `grape dpo` reads: the prompt text, then the two answers."""
    return {"id": ident, "question": ident, "level": "answer", "prompt": prompt_text,
            "chosen": _ending(pair.chosen.text, pair.chosen.finished, end_text),
            "rejected": _ending(pair.rejected.text, pair.rejected.finished, end_text),
            "chosen_value": pair.chosen.reward, "rejected_value": pair.rejected.reward,
            "margin": pair.chosen.reward - pair.rejected.reward, "answer": row["answer"]}  # fmt: skip
