"""The eval stage: greedy answers from a model, judged by a verifier; accuracy with a 95% interval.

Prompts are rendered by the one renderer (grape.text) with the template the model was trained with, so
a model fine-tuned by `grape sft` is asked in exactly the format it was trained on, up to the token.
Generation is the `hf` backend of grape.generation (batched, left-padded); a re-run reuses the answers an
earlier run gave under the same model and settings (grape.evaluation.answers). Each example's answer,
verdict and reason go to the output.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.console import console, progress_bar
from grape.data.pool import item_of, prompt_of, read_pool
from grape.data.read_rows import source_name
from grape.data.tables import check_table_output, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.evaluation.answers import Answer, AnswerJournal, answers_key, given_answers, item_key, journal_path
from grape.evaluation.metrics import wilson_interval
from grape.evaluation.settings import EvalSettings
from grape.generation.backend import Request, Sampling, check_batching
from grape.generation.hf_backend import HFBackend
from grape.models.load import LoadedModel, load_model
from grape.models.trained_template import template_for_model
from grape.text.templates import stop_strings
from grape.verification.registry import get_verifier, judged_by


def evaluate(
    data: str | Path,
    output: str | Path | None = None,
    settings: EvalSettings | None = None,
    loaded: LoadedModel | None = None,
    **overrides: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Answer every item of ``data`` greedily and verify; return (per-example rows, summary), write if asked."""
    settings = with_overrides(EvalSettings, settings, overrides)
    settings.template = template_for_model(settings.model, settings.template)
    if settings.stop is None:
        settings.stop = stop_strings(settings.template)
    if settings.limit is not None and settings.limit < 1:
        raise GrapeError("limit must be at least 1")
    if output is not None:
        check_table_output(output)  # before the model loads, not after every answer
    check_batching(settings.batching)
    started = time.time()
    check = get_verifier(settings.verifier)
    items = read_pool(data, settings.columns)[: settings.limit]  # an empty input is refused there
    check_judgeable(items, settings.verifier, source_name(data))  # before any answer is generated for nothing
    loaded = loaded or load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
    prompts = [prompt_of(item) for item in items]
    if settings.decode:  # reward-guided (grape decode): answered afresh every time
        key, texts, reused = None, decoded_answers(loaded, prompts, settings), 0
    else:
        key, texts, reused = greedy_answers(loaded, items, prompts, settings, output)
    rows = []
    for item, (text, n_tokens, finish) in zip(items, texts, strict=True):
        verdict = check(text, item_of(item))  # an empty answer is judged too: wrong where a gold answer exists
        reason = "empty response" if not text and verdict.correct is False else verdict.reason
        rows.append({
            "id": item["id"], "prompt": prompt_of(item), "response": text, "answer": item.get("answer"),
            "correct": verdict.correct, "reason": reason,
            "n_tokens": n_tokens, "finish_reason": finish,
        })  # fmt: skip
    summary = summarise(rows)
    summary["seconds"] = round(time.time() - started, 2)
    summary["answers_reused"] = reused
    if output is not None:
        write_rows(rows, output)
        write_sidecar(output, {"stage": "eval", "data": source_name(data), "settings": asdict(settings),
                               "model": loaded.identity, "answers_key": key, "summary": summary})  # fmt: skip
        journal_path(output).unlink(missing_ok=True)  # the output holds every answer now
    return rows, summary


def check_judgeable(items: list[dict[str, Any]], verifier: str, data: str) -> None:
    """Refuse data of which the verifier can judge no item: none has the field it needs (a gold answer under
    another name, e.g. SVAMP's ``answer_value``, is mapped with --columns)."""
    needed = judged_by(verifier)
    if not needed or any(item.get(name) is not None for item in items for name in needed):
        return
    columns = ", ".join(sorted({key for item in items for key in item} - {"candidates"}))
    fields = " or ".join(filter(None, [", ".join(map(repr, needed[:-1])), repr(needed[-1])]))
    mapping = ": map one, e.g. --columns answer=COLUMN" if needed == ("answer",) else ""
    raise GrapeError(f"{data}: no item has {fields}, which --verifier {verifier} judges by (its columns: {columns})"
                     + mapping)  # fmt: skip


def greedy_answers(
    loaded: LoadedModel, items: list[dict[str, Any]], prompts: list[Any], settings: EvalSettings,
    output: str | Path | None,
) -> tuple[str | None, list[Answer], int]:  # fmt: skip
    """(the answers' key, an answer per item in order, how many were reused): answers an earlier run gave under
    the same key (grape.evaluation.answers) are taken as they are, the others generated and journalled. Without
    an output nothing is kept, so no key is computed (it hashes every tensor of the model)."""
    key = None
    if output is not None:
        key = answers_key(loaded, settings.template, list(settings.stop or []), settings.max_new_tokens)
    keys = [item_key(item["id"], prompt) for item, prompt in zip(items, prompts, strict=True)]
    known = given_answers(output, key) if output is not None else {}
    todo = [i for i, k in enumerate(keys) if k not in known]
    if output is not None and len(todo) < len(keys):
        console.print(f"Resuming: {len(keys) - len(todo)} of {len(keys)} answers already given (under key {key})")
    with AnswerJournal(output, key) as journal:
        fresh = generate_answers(loaded, [prompts[i] for i in todo], settings,
                                 on_answer=lambda j, answer: journal.record(keys[todo[j]], answer))  # fmt: skip
    known.update({keys[i]: answer for i, answer in zip(todo, fresh, strict=True)})
    return key, [known[k] for k in keys], len(keys) - len(todo)


def generate_answers(
    loaded: LoadedModel,
    prompts: list[Any],
    settings: EvalSettings,
    on_answer: Callable[[int, Answer], None] | None = None,
) -> list[Answer]:
    """(text, tokens, finish reason) per prompt, greedy, in input order; ``on_answer(index, answer)`` as each
    comes."""
    if not prompts:
        return []
    backend = HFBackend(loaded, settings.template, settings.batch_size, batching=settings.batching)
    requests = [Request(str(i), 0, prompt) for i, prompt in enumerate(prompts)]
    sampling = Sampling(n=1, temperature=0.0, max_new_tokens=settings.max_new_tokens, stop=list(settings.stop or []))
    answers: dict[int, tuple[str, int, str]] = {}
    with progress_bar() as bar:
        task = bar.add_task("Evaluating", total=len(requests), rate="")
        for completion in backend.generate(requests, sampling):
            if completion.text is None:
                raise GrapeError(f"generation failed: {completion.error}")
            index = int(completion.request.id)
            answers[index] = (completion.text, completion.n_tokens, completion.finish_reason)
            if on_answer is not None:
                on_answer(index, answers[index])
            bar.update(task, advance=1)
    return [answers[i] for i in range(len(requests))]


def decoded_answers(loaded: LoadedModel, prompts: list[Any], settings: EvalSettings) -> list[tuple[str, int, str]]:
    """(text, tokens, finish reason) per prompt from the reward-guided decoder of ``settings.decode`` (grape decode)."""
    from grape.decoding.decode import decode_answers, eval_decoder

    decoder = eval_decoder(settings.decode, loaded, settings.template, settings.max_new_tokens, settings.stop)
    return decode_answers(decoder, prompts)


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Accuracy over the judged items (a verdict of None, an item without a gold answer, is counted apart; an
    empty answer to an item with one is wrong, never left out)."""
    judged = [r for r in rows if r["correct"] is not None]
    correct = sum(1 for r in judged if r["correct"])
    low, high = wilson_interval(correct, len(judged))
    return {
        "items": len(rows),
        "judged": len(judged),
        "correct": correct,
        "accuracy": correct / len(judged) if judged else None,
        "ci95": [low, high],
        "unjudged": len(rows) - len(judged),
        "finish_reasons": dict(Counter(r["finish_reason"] for r in rows)),
        "mean_response_tokens": sum(r["n_tokens"] or 0 for r in rows) / len(rows),
    }
