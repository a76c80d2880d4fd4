"""The dataset card of a selection: ``<selected>.card.md`` beside it, in the Hugging Face layout (YAML
metadata, then Markdown), written from the same record as the sidecar: what was selected, by which
strategy, the counts per source, and the model and template that scored the candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from grape.data.tables import write_atomically

# What each strategy keeps, in words (grape.selection.strategies ranks; the top `top_k` are kept).
STRATEGY_WORDS = {
    "grape": "the candidates the target model finds most probable (highest mean log-probability per response "
    "token): GRAPE, the best fit",
    "lowest": "the candidates the target model finds least probable (the paper's ablation)",
    "random": "candidates drawn at random (seeded per instruction)",
    "longest": "the longest candidates (most response tokens)",
    "shortest": "the shortest candidates (fewest response tokens)",
    "all": "every scored candidate",
}


def card_path(output: str | Path) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".card.md")


def write_dataset_card(output: str | Path, meta: dict[str, Any]) -> Path:
    """Write the card of the selection ``output`` from its sidecar record ``meta``; return the card's path."""
    text = dataset_card(Path(output).name, meta)
    return write_atomically(card_path(output), lambda handle: handle.write(text.encode("utf-8")))


def dataset_card(name: str, meta: dict[str, Any]) -> str:
    """The card's text for the selection file ``name`` (`select`'s sidecar record: settings, summary, ...)."""
    settings, summary = meta["settings"], meta["summary"]
    scored = meta.get("score_settings") or {}
    strategy, top_k = settings["strategy"], settings.get("top_k")
    header = {"tags": ["grape", "sft"], "task_categories": ["text-generation"]}
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
             f"# {name}", "",
             f"{summary['selected']} responses for supervised fine-tuning, selected by `grape select` from "
             f"{summary['candidates_scored']} scored candidates ({summary['candidates']} in all) to "
             f"{summary['instructions']} instructions. Rows are in TRL's `{settings['format']}` format; each also "
             "carries `id`, `candidate`, `source`, `score` (its mean log-probability per response token), "
             "`n_tokens` and `rank`.", "",
             "## How it was selected", "",
             f"- strategy `{strategy}`: {_strategy_words(strategy)}",
             f"- kept per instruction: {'all eligible' if top_k is None else f'the top {top_k}'}"
             + ("; only candidates a verifier judged correct" if settings.get("require_correct") else ""),
             f"- scored by `{scored.get('model', 'unknown')}` with template `{scored.get('template', 'unknown')}`"
             + ("" if not scored else f", {'EOS scored' if scored.get('eos', True) else 'EOS not scored'}")
             + (f", from `{meta['scores']}`" if meta.get("scores") else ""),
             f"- instructions without an eligible candidate: {summary['instructions_without_candidate']}"
             + (" (listed in the sidecar)" if summary["instructions_without_candidate"] else ""),
             "", "## Sources", "", *_sources(summary), "",
             *([f"Train on it with the model and template that scored it: `grape sft {name} -o OUTDIR` "
                "(both are read from the sidecar).", ""] if scored else []),
             f"Settings, the full summary and package versions: `{name}.meta.json`.", ""]  # fmt: skip
    return "\n".join(lines)


def _strategy_words(strategy: str) -> str:
    if strategy.startswith("source:"):
        return f"only the candidates of source `{strategy.removeprefix('source:')}`"
    if strategy.startswith("priority:"):
        names = ", then ".join(f"`{s.strip()}`" for s in strategy.removeprefix("priority:").split(","))
        return f"the candidates of the first source that has one, in the order {names} (S3FT); best fit first"
    return STRATEGY_WORDS.get(strategy, strategy)


def _sources(summary: dict[str, Any]) -> list[str]:
    lines = ["| source | scored candidates | chosen | share of the selection | mean log-prob | of the chosen |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]  # fmt: skip
    for source, s in summary["sources"].items():
        fits = " | ".join(_fit(s[key]) for key in ("mean_logprob", "chosen_mean_logprob"))
        lines.append(f"| {source} | {s['candidates']} | {s['chosen']} | {s['chosen_share']:.1%} | {fits} |")
    selected, everything = summary.get("mean_logprob_selected"), summary.get("mean_logprob_all")
    if selected is not None and everything is not None:
        lines += ["", f"Mean log-prob per token: {selected:.4f} selected, {everything:.4f} over all scored."]
    return lines


def _fit(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"
