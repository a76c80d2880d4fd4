"""`grape tools prepare`: tool-calling data into grape's rows, for `grape sft`, `grape rl` and `grape verify`.

Input: a BFCL question file (with its possible_answer file), or chat trajectories: rows with ``messages``
(assistant ``tool_calls`` or call text, ``tool`` outputs) and ``tools``. Each target turn becomes one row:
``id``, ``prompt`` (chat messages with the tools in the system turn, or the chat template's text with
``tools=``), ``completion`` (the gold calls as the format writes them, or the turn's text), ``answer`` (the
gold in BFCL's form: what the `tool-call` verifier and the IRM reward read), ``tools``, and with key-token
weights ``loss_weights`` (one per response token, for ``grape sft --loss weighted``). Turns excluded as
unclean are listed in the sidecar with the signature that excluded them; nothing else is dropped.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.data.read_rows import read_rows, source_name
from grape.data.tables import write_rows, write_sidecar
from grape.errors import GrapeError, InputError
from grape.text import Renderer
from grape.tools.bfcl import Trajectory, bfcl_entries, is_bfcl_row, read_answers
from grape.tools.calls import GoldError, chat_call
from grape.tools.clean_turns import ExcludedTurn, split_turns
from grape.tools.key_tokens import key_characters, token_weights
from grape.tools.parse import parse_calls
from grape.tools.render import call_text, chat_call_text, chat_prompt_text, plain_messages, renders_tools
from grape.tools.samples import Sample
from grape.tools.settings import PrepareSettings, check
from grape.tools.token_offsets import response_token_spans
from grape.tools.tool_docs import ToolDocError, read_tools

Row = dict[str, Any]


def prepare(
    input: str | Path, output: str | Path | None = None, settings: PrepareSettings | None = None, **overrides: Any
) -> tuple[list[Row], dict[str, Any]]:
    """Rows for every target turn of ``input``; return (rows, summary) and write them (JSONL) if asked.

    ``overrides`` set fields of `PrepareSettings`, e.g. ``prepare("BFCL_v4_simple_python.json", "rows.jsonl",
    answers="possible_answer/BFCL_v4_simple_python.json", weights="key-tokens", model="smollm2-135m-instruct")``.
    """
    settings = with_overrides(PrepareSettings, settings, overrides)
    check(settings)
    if output is not None and Path(output).suffix not in (".jsonl", ".json"):
        raise GrapeError(f"{output}: write the rows as .jsonl (their answers mix types that Parquet refuses)")
    started = time.time()
    tokenizer = _tokenizer(settings) if settings.model else None
    settings = _resolved(settings, tokenizer)
    samples, excluded = _samples(input, settings)
    end_of_turn = Renderer(tokenizer, "chat").end_text if settings.format == "chat" else None
    renderer = Renderer(tokenizer, settings.template, settings.eos) if settings.weights == "key-tokens" else None
    rows = [_row(s, settings, tokenizer, end_of_turn, renderer) for s in samples]
    summary = {"rows": len(rows), "excluded_turns": len(excluded),
               "without_completion": sum(r["completion"] is None for r in rows),
               "without_answer": sum(r["answer"] is None for r in rows)}  # fmt: skip
    if output is not None:
        write_rows(rows, output)
        meta: dict[str, Any] = {"stage": "tools-prepare", "input": source_name(input), "settings": asdict(settings),
                                "counts": summary, "excluded": [vars(e) for e in excluded],
                                "seconds": round(time.time() - started, 2)}  # fmt: skip
        if settings.model:  # what `grape sft` takes as its defaults, so the weights fall on its tokens
            meta["score_settings"] = {"model": settings.model, "template": settings.template, "eos": settings.eos}
        write_sidecar(output, meta)
    return rows, summary


def _resolved(settings: PrepareSettings, tokenizer: Any) -> PrepareSettings:
    """The automatic choices made: the format and the template the rows are trained with."""
    fmt = settings.format
    if fmt == "auto":
        fmt = "chat" if tokenizer is not None and renders_tools(tokenizer) else "plain"
    elif fmt == "chat" and not renders_tools(tokenizer):
        raise GrapeError(f"{settings.model}'s chat template does not render tools=: use --format plain")
    template = settings.template
    if fmt == "chat":
        if template not in (None, "raw"):
            raise GrapeError("format chat writes the prompt as the template's text: train with --template raw")
        template = "raw"
    elif template is None:
        template = "chat" if getattr(tokenizer, "chat_template", None) else "paper"
    return replace(settings, format=fmt, template=template)


def _samples(input: str | Path, settings: PrepareSettings) -> tuple[list[Sample], list[ExcludedTurn]]:
    samples: list[Sample] = []
    excluded: list[ExcludedTurn] = []
    signatures = settings.error_signatures if settings.clean_turns else []
    for entry, file, number in _entries(input, settings):
        if isinstance(entry, Sample):
            samples.append(entry)
            continue
        try:
            clean, left_out = split_turns(entry.id, entry.messages, entry.tools, signatures)
        except GoldError as exc:
            raise InputError(file, number, "messages", str(exc)) from exc
        samples += clean
        excluded += left_out
    if not samples and not excluded:
        raise InputError(str(input), None, None, "no rows")
    return samples, excluded


def _entries(input: str | Path, settings: PrepareSettings) -> Iterator[tuple[Sample | Trajectory, str, int]]:
    file = str(input)
    first = next(iter(read_rows(input)), None)
    if first is not None and first.data is not None and is_bfcl_row(first.data):
        answers = read_answers(settings.answers) if settings.answers else None
        for number, entry in enumerate(bfcl_entries(input, answers, settings.docs), start=1):
            yield entry, file, number
        return
    if settings.answers:
        raise GrapeError(f"{input} is not a BFCL question file: --answers is for BFCL's files")
    for raw in read_rows(input):
        if raw.data is None:
            raise InputError(file, raw.row, None, raw.error or "unreadable row")
        messages = _messages(raw.data.get("messages"), file, raw.row)
        try:
            tools = read_tools(raw.data.get("tools"))
        except ToolDocError as exc:
            raise InputError(file, raw.row, "tools", str(exc)) from exc
        yield Trajectory(str(raw.data.get("id", raw.row)), messages, tools), file, raw.row


def _messages(value: Any, file: str, row: int) -> list[dict[str, Any]]:
    """A trajectory's chat messages as given, or a one-line error at the first one grape would misread: a role
    that is not a string, or a tool call whose arguments are not a JSON object (it was dropped, and the turn's
    gold became "no call is right")."""
    if not isinstance(value, list):
        raise InputError(file, row, "messages", "expected a list of chat messages (or a BFCL question file)")
    for index, message in enumerate(value):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InputError(
                file, row, where, f"expected a chat message {{role, content}}, got {type(message).__name__}"
            )
        if not isinstance(message.get("role"), str):
            got = "nothing" if message.get("role") is None else type(message["role"]).__name__
            raise InputError(file, row, f"{where}.role", f"expected a string (user, assistant, tool...), got {got}")
        calls = message.get("tool_calls")
        if calls is not None and not isinstance(calls, list):
            raise InputError(file, row, f"{where}.tool_calls", f"expected a list of calls, got {type(calls).__name__}")
        for number, call in enumerate(calls or []):
            if chat_call(call) is None:
                raise InputError(file, row, f"{where}.tool_calls[{number}]", "expected a call {name, arguments} (or "
                                 "{type: function, function: {...}}) whose arguments are a JSON object")  # fmt: skip
    return value


def _row(sample: Sample, settings: PrepareSettings, tokenizer: Any, end_of_turn: str | None,
         renderer: Renderer | None) -> Row:  # fmt: skip
    if settings.format == "chat":
        prompt: Any = chat_prompt_text(tokenizer, sample.context, sample.tools)
    else:
        prompt = plain_messages(sample.context, sample.tools)
    target = sample.target
    if isinstance(target, list):
        completion = chat_call_text(tokenizer, target, end_of_turn) if settings.format == "chat" else call_text(target)
    else:
        completion = target if target is not None else settings.no_call_response if sample.gold == [] else None
    row: Row = {"id": sample.id, "prompt": prompt, "completion": completion, "answer": sample.gold,
                "tools": [t.as_chat() for t in sample.tools]}  # fmt: skip
    if renderer is not None:
        row["loss_weights"] = _weights(renderer, prompt, completion, sample, settings.max_key_weight)
    return row


def _weights(renderer: Renderer, prompt: Any, completion: str | None, sample: Sample, cap: float) -> list[float] | None:
    """Key-token weights of the completion's tokens (all 1 for a text without calls); None without a completion."""
    if completion is None:
        return None
    spans = response_token_spans(renderer, prompt, completion)
    parsed = parse_calls(completion)
    calls = parsed.calls if parsed.error is None else []
    characters = key_characters(completion, calls, parsed.spans if calls else [], [t.name for t in sample.tools])
    return token_weights(spans, characters, cap)


def _tokenizer(settings: PrepareSettings) -> Any:
    from transformers import AutoTokenizer

    from grape.models.load import quiet_transformers, resolve_model_dir

    quiet_transformers()
    target, _ = resolve_model_dir(settings.model or "", settings.trust_remote_code)
    try:
        return AutoTokenizer.from_pretrained(target, trust_remote_code=settings.trust_remote_code)
    except OSError as exc:
        raise GrapeError(f"cannot load the tokenizer of '{settings.model}': {exc}".splitlines()[0]) from exc
