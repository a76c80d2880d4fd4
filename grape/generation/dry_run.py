"""`grape generate --dry-run`: what a run would do, with only tokenizers loaded and nothing written.

Per generator: the rows it answers, the candidates to make and those already there, the prompt tokens
(each prompt rendered by `Renderer.generation_ids` in the generator's template, as the run would), the
rows whose prompt plus ``max_new_tokens`` exceed the model's context, the rows its template cannot
render (e.g. a field the Jinja file uses is missing), and an estimated time from the rate measured by
earlier runs into the same output (the sidecar's ``measured``: generation seconds per candidate, model
loading excluded; linear in the candidates, so fuller batches make a large run faster than it says). Where
no rate is known it says so: a ``--limit 10`` run into the output measures one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.errors import GrapeError
from grape.generation.backend import GeneratorSpec, Request, Sampling
from grape.generation.prompts import resolve_format
from grape.generation.reference import ReferenceReport, add_references
from grape.generation.settings import GenerateSettings
from grape.generation.work import Work, generator_specs, pending, prepare, row_counts


@dataclass
class GeneratorPlan:
    name: str
    spec: str  # backend:model
    template: str  # as the run resolves it (auto: chat or few-shot, once the tokenizer is read)
    sampling: Sampling
    to_make: int  # candidates still to generate
    existing: int  # already in the output or the journal
    prompt_tokens: int | None = None  # over the candidates to make; None: the tokenizer is not here (openai)
    longest_prompt: int | None = None
    context: int | None = None  # the model's context length
    too_long: int | None = None  # rows whose prompt + max_new_tokens exceed the context
    unrenderable: int = 0  # rows whose prompt the template cannot render
    seconds: float | None = None  # the estimated generation time; None: no measured rate
    note: str = ""  # why a number is unknown


@dataclass
class GenerationPlan:
    rows: dict[str, int]  # input, output, generated_for, unreadable, past_limit
    generators: list[GeneratorPlan]
    reference: ReferenceReport | None


def plan_generation(
    input: Any, output: str | Path, settings: GenerateSettings | None = None, **overrides: Any
) -> GenerationPlan:
    """What `generate` would do with these arguments; reads the input, the output and tokenizers only."""
    settings = with_overrides(GenerateSettings, settings, overrides)
    specs = generator_specs(settings)
    work = prepare(input, output, settings)
    reference = add_references(work.todo.values(), settings.reference_field) if settings.reference_field else None
    tokenizers: dict[str, Any] = {}  # model -> (tokenizer, context) or the reason it is not known
    plans = [_plan(spec, settings, work, tokenizers) for spec in specs]
    return GenerationPlan(row_counts(work), plans, reference)


def _plan(spec: GeneratorSpec, settings: GenerateSettings, work: Work, tokenizers: dict[str, Any]) -> GeneratorPlan:
    sampling = spec.sampling_over(settings.sampling)
    requests, existing = pending(work, spec.name, sampling.n)
    text = f"{spec.backend}:{spec.model}"
    template = spec.template or settings.prompt_format
    plan = GeneratorPlan(spec.name, text, template, sampling, len(requests), existing)
    plan.seconds = _estimate(work.meta.get("generators", {}).get(spec.name), text, len(requests))
    if spec.backend == "openai":
        plan.note = "prompt tokens unknown: the server's tokenizer is not here"
        return plan
    if spec.model not in tokenizers:  # several generators of one model (self, paraphrase) read it once
        try:
            tokenizers[spec.model] = _tokenizer_and_context(spec.model, settings.trust_remote_code)
        except (GrapeError, OSError, ValueError) as exc:
            tokenizers[spec.model] = f"prompt tokens unknown: {str(exc).splitlines()[0]}"
    if isinstance(tokenizers[spec.model], str):
        plan.note = tokenizers[spec.model]
        return plan
    tokenizer, plan.context = tokenizers[spec.model]
    plan.template = resolve_format(template, tokenizer)
    _count_prompt_tokens(plan, requests, tokenizer)
    return plan


def _count_prompt_tokens(plan: GeneratorPlan, requests: list[Request], tokenizer: Any) -> None:
    from grape.text import PromptError, Renderer

    renderer = Renderer(tokenizer, plan.template, eos=False)
    lengths: dict[str, int | None] = {}  # per row: its samples share the prompt
    for request in requests:
        if request.id not in lengths:
            try:
                lengths[request.id] = len(renderer.generation_ids(request.prompt, request.fields))
            except PromptError:
                lengths[request.id] = None
    known = [n for n in lengths.values() if n is not None]
    plan.unrenderable = len(lengths) - len(known)
    plan.prompt_tokens = sum(lengths[r.id] or 0 for r in requests)
    plan.longest_prompt = max(known, default=0)
    plan.too_long = sum(1 for n in known if n + plan.sampling.max_new_tokens > plan.context)


def _tokenizer_and_context(model: str, trust_remote_code: bool) -> tuple[Any, int]:
    """The generator's tokenizer and context length, without loading its weights."""
    from transformers import AutoConfig, AutoTokenizer

    from grape.models.context import context_length_of
    from grape.models.load import quiet_transformers, resolve_model_dir

    quiet_transformers()
    target, _ = resolve_model_dir(model, trust_remote_code)
    tokenizer = AutoTokenizer.from_pretrained(target, trust_remote_code=trust_remote_code)
    config = AutoConfig.from_pretrained(target, trust_remote_code=trust_remote_code)
    return tokenizer, context_length_of(config, tokenizer)


def _estimate(previous: dict[str, Any] | None, spec: str, to_make: int) -> float | None:
    """Seconds for ``to_make`` candidates at the rate earlier runs of this generator measured, or None."""
    measured = (previous or {}).get("measured") if (previous or {}).get("spec") == spec else None
    if not measured or not measured.get("candidates"):
        return None
    return to_make * measured["seconds"] / measured["candidates"]


def plan_rows(plan: GenerationPlan) -> list[tuple[Any, ...]]:
    """What `grape generate --dry-run` prints: one row per quantity, one column per generator."""
    gens = plan.generators

    return [
        ("model", *(g.spec for g in gens)),
        ("template", *(Path(g.template).name if Path(g.template).is_file() else g.template for g in gens)),
        ("sampling", *(f"n={g.sampling.n} T={g.sampling.temperature:g} max {g.sampling.max_new_tokens}" for g in gens)),
        ("to make", *(f"{g.to_make:,} ({g.existing:,} there)" for g in gens)),
        ("prompt tokens", *(_tokens(g.prompt_tokens, "max", g.longest_prompt) for g in gens)),
        ("too long", *(_tokens(g.too_long, "context", g.context) for g in gens)),
        ("unrenderable", *(f"{g.unrenderable:,}" for g in gens)),
        ("est. time", *("unknown" if g.seconds is None else _duration(g.seconds) for g in gens)),
    ]


def _tokens(count: int | None, label: str, bound: int | None) -> str:
    """A count with its bound, or "?" where it is not known (an OpenAI server's tokenizer is not local)."""
    return "?" if count is None or bound is None else f"{count:,} ({label} {bound:,})"


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"
