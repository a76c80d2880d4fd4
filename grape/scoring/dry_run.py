"""`grape score --dry-run`: what a run would do, counted before it starts; nothing is written.

It reads and checks the input as the run does (the same errors), tokenises every candidate with the target's
tokenizer through the scorer's own code (`render_item`: whole-text ids, grouped by shared prompt, too-long
candidates set aside), looks at the saved parts to say what a re-run would reuse, and estimates the time
from a rate: the one this output's previous run recorded in its sidecar, else one measured now on about a
batch of the real work (that loads the model; ``measure=False`` skips it and says no rate is known).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grape.data.records import Instruction, skipped
from grape.data.tables import read_sidecar
from grape.errors import GrapeError, InputError
from grape.models.context import context_length_of
from grape.models.fingerprint import loaded_fingerprint, model_fingerprint
from grape.models.load import (
    LoadedModel,
    load_model,
    quiet_transformers,
    resolve_device,
    resolve_dtype,
    resolve_model_dir,
)
from grape.scoring.assemble import raise_first_problem
from grape.scoring.chunk_scorer import ChunkScorer, WorkItem, render_item
from grape.scoring.keys import instruction_key, settings_key
from grape.scoring.packing import TokenGroup, split_groups
from grape.scoring.parts import CandidateResult, parts_root, saved_keys
from grape.scoring.rate import EngineRate, recorded_rate
from grape.scoring.resume import pending_chunks, read_instructions, scorable, work_item
from grape.scoring.settings import ScoreSettings
from grape.scoring.template_note import chat_template_warning
from grape.text import Renderer


@dataclass
class ScorePlan:
    input_instructions: int  # in the input
    instructions: int  # in this run: the first `limit` of them
    rows: int  # rows the scores table will have (one per candidate, one per unreadable row)
    to_score: int  # candidates the model scores
    skipped: Counter = field(default_factory=Counter)  # status -> rows skipped before the model (reading, rendering)
    first_problem: str | None = None  # with on_error fail: the error the run stops at (file, row, field)
    context: int = 0  # the model's context length, in tokens
    prompt_tokens: int = 0  # once per shared prompt (what the engine computes)
    prompt_tokens_repeated: int = 0  # were each candidate scored with its own copy of the prompt
    response_tokens: int = 0
    engine_tokens: int = 0  # the engine's work: prompts once per packed piece, plus the responses
    done_instructions: int = 0  # already scored in saved parts that a run reuses
    pending_instructions: int = 0
    pending_tokens: int = 0
    output_state: str = ""
    rate: EngineRate | None = None
    rate_source: str = ""  # where the rate comes from, or why there is none
    warning: str | None = None  # the chat-template warning, if any

    @property
    def seconds_left(self) -> float | None:
        return self.pending_tokens / self.rate.tokens_per_second if self.rate and self.pending_tokens else None


def plan_score(
    input: str | Path,
    output: str | Path | None,
    settings: ScoreSettings | None = None,
    measure: bool = True,
    loaded: LoadedModel | None = None,
) -> ScorePlan:
    """Count what `score(input, output, settings, loaded)` would do; ``measure``: time about a batch when no rate
    is recorded (loads the model). Raises the run's own one-line errors for a bad input, model or template."""
    settings = settings or ScoreSettings()
    instructions, n_input = read_instructions(input, settings)
    tokenizer, config = (loaded.tokenizer, loaded.model.config) if loaded else _tokenizer_and_config(settings)
    renderer = Renderer(tokenizer, settings.template, settings.eos)
    device = loaded.device if loaded else resolve_device(settings.device)
    max_row_tokens = settings.engine.for_device(device.type).max_row_tokens
    keys = [instruction_key(i) if scorable(i) else None for i in instructions]
    plan = ScorePlan(n_input, len(instructions), 0, 0, context=context_length_of(config, tokenizer))
    plan.warning = chat_template_warning(tokenizer, settings.template, settings.model)
    tokens: dict[str, int] = {}  # instruction key -> the engine's tokens for it
    items: dict[str, WorkItem] = {}
    for inst, key in zip(instructions, keys, strict=True):
        _count_read_skips(plan, inst, key)
        if key is None or key in items:
            continue  # an identical instruction twice is scored once (resume.pending_chunks)
        items[key] = work_item(inst, key)
        tokens[key] = _count_tokens(plan, inst, items[key], renderer, max_row_tokens, settings.on_error)
    # the settings key of the parts, as `score` makes it
    dtype = str(loaded.dtype if loaded else resolve_dtype(settings.dtype, device)).removeprefix("torch.")
    fingerprint = loaded_fingerprint(loaded) if loaded else model_fingerprint(settings.model)
    key, _ = settings_key(fingerprint, settings.template, settings.eos, dtype)
    directory = parts_root(output) / key if output is not None else None
    done, unreadable = saved_keys(directory) if directory is not None and directory.is_dir() else (set(), 0)
    live = [(inst, k) for inst, k in zip(instructions, keys, strict=True) if k is not None]
    pending = [item for chunk in pending_chunks(live, done, settings.part_size) for item in chunk.items]
    plan.pending_instructions = len(pending)
    plan.done_instructions = len(items) - len(pending)
    plan.pending_tokens = sum(tokens[item.key] for item in pending)
    plan.output_state = _output_state(output, directory, plan, unreadable)
    _find_rate(plan, output, fingerprint, dtype, device.type)
    if plan.rate is None and measure and pending:
        _measure(plan, settings, pending, tokens, loaded)
    return plan


def _count_read_skips(plan: ScorePlan, inst: Instruction, key: str | None) -> None:
    """Rows of the table that are skipped before any tokenising (the statuses `assemble.scores_rows` gives)."""
    if not inst.candidates:
        plan.rows += 1
        plan.skipped[skipped(inst.skip_reason)] += 1
        return
    plan.rows += len(inst.candidates)
    for cand in inst.candidates:
        if key is None or cand.skip_reason is not None:
            plan.skipped[skipped(cand.skip_reason or inst.skip_reason or "unscored")] += 1


def _count_tokens(plan: ScorePlan, inst: Instruction, item: WorkItem, renderer: Renderer, max_row_tokens: int,
                  on_error: str) -> int:  # fmt: skip
    """Add an instruction's tokens to the plan; return the engine's tokens for it."""
    rendered = render_item(renderer, plan.context, item)
    for k, (reason, detail) in rendered.skipped.items():
        plan.skipped[skipped(reason)] += 1
        if on_error == "fail" and plan.first_problem is None:
            try:
                raise_first_problem(inst, k, CandidateResult(skipped(reason), None, None, detail))
            except InputError as exc:
                plan.first_problem = str(exc)
    groups = [TokenGroup(prompt, [ids for _, ids in kept]) for prompt, kept in rendered.groups]
    plan.to_score += sum(len(g.responses) for g in groups)
    plan.prompt_tokens += sum(len(g.prompt) for g in groups)
    plan.prompt_tokens_repeated += sum(len(g.prompt) * len(g.responses) for g in groups)
    plan.response_tokens += sum(len(r) for g in groups for r in g.responses)
    pieces = split_groups(groups, max_row_tokens)  # what the engine computes: a split group repeats its prompt
    work = sum(len(groups[g].prompt) + sum(len(groups[g].responses[k]) for k in ks) for g, ks in pieces)
    plan.engine_tokens += work
    return work


def _output_state(output: str | Path | None, directory: Path | None, plan: ScorePlan, unreadable: int) -> str:
    if output is None:
        return "no output: nothing to resume, nothing kept"
    exists = Path(output).exists()
    redo = f"; {unreadable} unreadable parts will be redone" if unreadable else ""
    if plan.done_instructions and not plan.pending_instructions:
        if exists:
            return f"complete: every instruction is scored (parts in {directory}); a run only writes the table again"
        return f"every instruction is scored in the saved parts ({directory}); a run writes the table from them"
    if plan.done_instructions:
        total = plan.done_instructions + plan.pending_instructions
        return (f"resumes: {plan.done_instructions} of {total} instructions already scored (parts in {directory}), "
                f"{plan.pending_instructions} left{redo}")  # fmt: skip
    if exists:
        return f"{output} exists, but no saved part matches this input and these settings: a run replaces it{redo}"
    return f"nothing scored yet{redo}"


def _find_rate(plan: ScorePlan, output: str | Path | None, fingerprint: str, dtype: str, device: str) -> None:
    """The rate this output's previous run recorded, when it ran like this run will (model, dtype, device)."""
    meta = read_sidecar(output) if output is not None and Path(output).is_file() else {}
    if not meta:
        plan.rate_source = "no earlier run of this output recorded a rate"
        return
    rate, why_not = recorded_rate(meta, fingerprint, dtype)
    if rate is not None and (rate.device != device or rate.workers != 1):
        where = f"{rate.workers} Ray workers" if rate.workers != 1 else rate.device
        rate, why_not = None, f"the previous run of this output scored on {where}, this one on {device}"
    plan.rate, plan.rate_source = rate, why_not or "recorded by the previous run of this output"


def _measure(plan: ScorePlan, settings: ScoreSettings, pending: list[WorkItem], tokens: dict[str, int],
             loaded: LoadedModel | None) -> None:  # fmt: skip
    """Time the scorer on one batch's worth of the first pending instructions, after a warm-up on the first one
    alone (a GPU's first forward pass sets up its kernels). About one batch: on a busy 2-core CPU a batch of
    8,192 tokens took minutes, so the dry run measures the least that gives a rate at the run's batch size."""
    loaded = loaded or load_model(settings.model, settings.dtype, settings.device, settings.trust_remote_code)
    scorer = ChunkScorer(loaded, settings.template, settings.eos, settings.engine)
    scorer.score(pending[:1])
    budget, sample = scorer.engine.settings.batch_tokens, []
    for item in pending[1:] or pending:  # a one-instruction input is timed on its warm item again
        sample.append(item)
        if sum(tokens[i.key] for i in sample) >= budget:
            break
    counted = [0, 0]  # batches, tokens

    def count(_: int, n_tokens: int) -> None:
        counted[0], counted[1] = counted[0] + 1, counted[1] + n_tokens

    started = time.perf_counter()
    scorer.score(sample, on_batch=count)
    seconds = time.perf_counter() - started
    if not counted[1]:
        plan.rate_source = "no rate: the sample had nothing to score"
        return
    plan.rate = EngineRate(counted[1], seconds, loaded.device.type)
    plan.rate_source = (f"measured now: {counted[1]:,} tokens of this input in {counted[0]} batches, "
                        f"{seconds:.1f} s after a warm-up")  # fmt: skip


def _tokenizer_and_config(settings: ScoreSettings) -> tuple[Any, Any]:
    """The target's tokenizer and config, without its weights."""
    from transformers import AutoConfig, AutoTokenizer

    quiet_transformers()
    target, _ = resolve_model_dir(settings.model, settings.trust_remote_code)
    try:
        tokenizer = AutoTokenizer.from_pretrained(target, trust_remote_code=settings.trust_remote_code)
        config = AutoConfig.from_pretrained(target, trust_remote_code=settings.trust_remote_code)
    except OSError as exc:
        raise GrapeError(f"cannot load model '{settings.model}': {exc}".splitlines()[0]) from exc
    return tokenizer, config
