"""The decode stage: answer every prompt with a reward-guided decoder (Transfer Q*, ARGS, best-of-n) or greedily.

Output: one row per input prompt, in input order: ``id``, the prompt (``prompt`` or ``messages``), ``response``,
``n_tokens``, ``finish_reason``, ``reward`` (r of the response, when a reward model is given), ``sft_logprob``
(Σ log π_sft of the tokens generated), ``status`` (``decoded`` or ``skipped:<reason>``: no prompt disappears),
the input's ``answer`` when it has one, and with ``trace`` each step's candidates, prior, value and choice.
The sidecar holds the resolved settings, the models' identities and a summary (tokens/s, each model's work).
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

from grape.config import load_settings, with_overrides
from grape.console import progress_bar
from grape.data.pool import SKIP_KEY, prompt_of, read_pool
from grape.data.read_rows import source_name
from grape.data.tables import write_rows, write_sidecar
from grape.decoding.decoder import Decoded, Decoder
from grape.decoding.reward import load_reward_model
from grape.decoding.settings import DecodeSettings, check
from grape.errors import GrapeError, InputError
from grape.models.load import LoadedModel, load_model
from grape.models.trained_template import template_for_model
from grape.text import PromptError

DECODED = "decoded"


def decode(
    prompts: Any,
    output: str | Path | None = None,
    settings: DecodeSettings | None = None,
    decoder: Decoder | None = None,
    **overrides: Any,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Decode every prompt of ``prompts`` (a file, a Hub id, rows in memory); return (rows, summary), write if asked.

    ``overrides`` set fields of `DecodeSettings`, e.g. ``decode("p.jsonl", "out.jsonl", method="args",
    reward="rm")``. ``decoder``: models already loaded (`build_decoder`, or a `Decoder` of one's own parts).
    """
    settings = with_overrides(DecodeSettings, settings, overrides)
    check(settings)
    # As `grape eval`: without --template, the one grape trained π_sft with; a mismatch is warned about (once, here).
    settings = replace(settings, template=template_for_model(settings.model, settings.template))
    started = time.time()
    file = source_name(prompts)
    items = read_pool(prompts, settings.columns, on_error=settings.on_error)[: settings.limit]  # refuses no rows
    decoder = decoder or build_decoder(settings)
    rows = []
    with progress_bar() as bar:
        task = bar.add_task(f"Decoding ({settings.method})", total=len(items), rate="")
        for number, item in enumerate(items, start=1):
            rows.append(_row(decoder, item, file, number, settings))
            bar.update(task, advance=1)
    summary = summarise(rows, time.time() - started, decoder.work())
    if output is not None:
        write_rows(rows, output)
        write_sidecar(output, {"stage": "decode", "input": file, "settings": asdict(settings), "summary": summary,
                               "models": decoder.identity, "end_ids": sorted(decoder.end_ids)})  # fmt: skip
    return rows, summary


def build_decoder(settings: DecodeSettings, policy: LoadedModel | None = None) -> Decoder:
    """Load the models the method needs (π_sft unless given as ``policy``; ρ_BL for tq; r; r_BL for indirect)."""
    check(settings)
    options = dict(dtype=settings.dtype, device=settings.device, trust_remote_code=settings.trust_remote_code)
    policy = policy or load_model(settings.model, **options)
    baseline = None
    if settings.method == "tq":
        baseline = policy if settings.baseline == settings.model else load_model(settings.baseline, **options)
        check_same_tokens(policy, baseline)
    reward = baseline_reward = None
    if settings.reward:
        reward = load_reward_model(settings.reward, settings.reward_template, settings.reward_eos, **options)
    if settings.method == "tq" and settings.transfer == "indirect":
        baseline_reward = load_reward_model(settings.baseline_reward, settings.reward_template, settings.reward_eos,
                                            **options)  # fmt: skip
    return Decoder(settings, policy, baseline, reward, baseline_reward)


def eval_decoder(config: str | Path, policy: LoadedModel, template: str, max_new_tokens: int, stop: Any) -> Decoder:
    """The decoder of `grape eval` with ``decode: FILE``: that file's settings (method, baseline, reward, ...),
    answering with the model under evaluation as π_sft, in its template, within its token budget."""
    settings = load_settings(DecodeSettings, config)
    settings = replace(settings, model=policy.identity.get("spec") or settings.model, template=template,
                       max_new_tokens=max_new_tokens, stop=stop)  # fmt: skip
    return build_decoder(settings, policy)


def check_same_tokens(policy: LoadedModel, baseline: LoadedModel) -> None:
    """ρ_BL continues π_sft's token sequence: both must read the same ids as the same tokens."""
    if baseline is not policy and policy.tokenizer.get_vocab() != baseline.tokenizer.get_vocab():
        raise GrapeError(f"the baseline {baseline.identity.get('spec')} has another tokenizer than the model "
                         f"{policy.identity.get('spec')}: Transfer Q* rolls out ρ_BL from π_sft's tokens, so both "
                         "must share one vocabulary (e.g. a DPO model trained from the same base)")  # fmt: skip


def decode_answers(decoder: Decoder, prompts: list[Any], seed: int = 0) -> list[tuple[str, int, str]]:
    """(text, tokens, finish reason) per prompt, in order: what `grape eval` takes from a generator."""
    out = []
    with progress_bar() as bar:
        task = bar.add_task(f"Decoding ({decoder.settings.method})", total=len(prompts), rate="")
        for number, prompt in enumerate(prompts):
            decoded = decoder.decode(prompt, seed_for(seed, number))
            out.append((decoded.text, len(decoded.tokens), decoded.finish_reason))
            bar.update(task, advance=1)
    return out


def seed_for(seed: int, key: Any) -> int:
    """A prompt's own seed: the same draws whatever the order or the other prompts."""
    return int(hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()[:15], 16)


def _row(decoder: Decoder, item: dict[str, Any], file: str, number: int, settings: DecodeSettings) -> dict[str, Any]:
    prompt = prompt_of(item)
    row: dict[str, Any] = {"id": item["id"], "messages" if isinstance(prompt, list) else "prompt": prompt}
    if item.get("answer") is not None:
        row["answer"] = item["answer"]
    if item.get(SKIP_KEY):
        return {**row, "response": None, "status": f"skipped:{item[SKIP_KEY]}"}
    try:
        decoded = decoder.decode(prompt, seed_for(settings.seed, item["id"]))
    except PromptError as exc:
        if settings.on_error == "fail":
            raise InputError(file, number, "prompt", str(exc)) from exc
        return {**row, "response": None, "status": "skipped:unrenderable_prompt"}
    row.update(response=decoded.text, n_tokens=len(decoded.tokens), finish_reason=decoded.finish_reason,
               reward=decoded.reward, sft_logprob=decoded.sft_logprob, status=DECODED)  # fmt: skip
    if settings.trace:
        row["trace"] = _trace(decoder, decoded)
    return row


def _trace(decoder: Decoder, decoded: Decoded) -> list[dict[str, Any]]:
    return [{"candidates": step.candidates, "tokens": [decoder.tokenizer.decode([t]) for t in step.candidates],
             "prior": step.prior, "values": step.values, "chosen": step.chosen} for step in decoded.steps]  # fmt: skip


def summarise(rows: list[dict[str, Any]], seconds: float, work: dict[str, int]) -> dict[str, Any]:
    done = [r for r in rows if r["status"] == DECODED]
    tokens = sum(r["n_tokens"] for r in done)
    rewards = [r["reward"] for r in done if r.get("reward") is not None]
    return {
        "prompts": len(rows),
        "decoded": len(done),
        "skipped": len(rows) - len(done),
        "tokens": tokens,
        "seconds": round(seconds, 2),
        "tokens_per_second": round(tokens / seconds, 3) if seconds > 0 else None,
        "mean_reward": sum(rewards) / len(rewards) if rewards else None,
        "finish_reasons": dict(Counter(r["finish_reason"] for r in done)),
        "work": work,
    }
