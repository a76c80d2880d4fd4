"""A sampled continuation cut into steps: iTool's step-level actions.

The text is cut at each separator (``". "``, ``", "``, ``"="``, ``"("`` by default), the separator staying with
the fragment before it, except its trailing whitespace, which starts the next fragment; then every ``per_step``
consecutive fragments make one step (the last step may hold fewer). ``get_weather(city='Paris', unit='c')``
gives the fragments ``get_weather(``, ``city=``, ``'Paris',``, `` unit=``, ``'c')`` and, two a step, the steps
``get_weather(city=``, ``'Paris', unit=`` and ``'c')``.

Two departures from the official code (mcts_vllm.py), on purpose. The space of ``", "`` and ``". "`` goes with
the next step: a partial answer ending in a space would be continued from a lone space token, which a model has
almost never seen (a word's own leading space is part of its token; docs/scoring.md). And nothing is added or
lost: the steps joined are the text (the official code joins fragments with a space the model never wrote).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SEPARATORS = (". ", ", ", "=", "(")
FRAGMENTS_PER_STEP = 2


def split_fragments(text: str, separators: Sequence[str] = SEPARATORS) -> list[str]:
    """The text cut at every separator: each fragment ends with a separator, its trailing whitespace left to
    the next fragment; no empty fragment."""
    if not separators:
        return [text] if text else []
    pattern = "|".join(re.escape(s) for s in sorted(separators, key=len, reverse=True))
    fragments, start = [], 0
    for match in re.finditer(pattern, text):
        kept = match.group().rstrip()
        cut = match.start() + len(kept) if kept else match.end()  # an all-space separator: after it
        if cut > start:
            fragments.append(text[start:cut])
            start = cut
    if start < len(text):
        fragments.append(text[start:])
    return fragments


def split_steps(text: str, separators: Sequence[str] = SEPARATORS, per_step: int = FRAGMENTS_PER_STEP) -> list[str]:
    """The text as steps of ``per_step`` fragments each (`split_fragments`); ``"".join(steps) == text``."""
    if per_step < 1:
        raise ValueError("a step holds at least one fragment")
    fragments = split_fragments(text, separators)
    return ["".join(fragments[i : i + per_step]) for i in range(0, len(fragments), per_step)]


def step_spans(steps: Sequence[str]) -> list[tuple[int, int]]:
    """Each step's character span [start, end) in the text the steps were cut from."""
    spans, start = [], 0
    for step in steps:
        spans.append((start, start + len(step)))
        start += len(step)
    return spans
