"""TL-Training's key-token weights (PKT), one per response token, from character offsets.

In a response that calls tools, three kinds of token (TL-Training, code/pkt/utils.py):
- K, where the tool choice is decided: the first token of each call's name, and for every other available
  tool, the token where the call's name stops agreeing with it (``get_weather`` against ``get_time``: the
  token that covers the ``w``; against ``get``: the token after the name);
- P, the tokens closing each argument value: the one covering a quoted or bracketed value's closing
  character, and the one covering the ``,`` / ``)`` (JSON: ``,`` / ``}``) right after the value;
- O, every other response token, the end marker included.
K's tokens get w = min(|O| / |K|, 9) when |K| < |O| (else 1), every other token 1, so that the per-sequence
weighted loss (grape sft --loss weighted) is (w·Σ_K ℓ + Σ_P ℓ + Σ_O ℓ) / (w·|K| + |P| + |O|). A token in
both K and P counts once, as K.

Characters are found from the parser's spans and tokens by their offsets, never by token strings, so the
same code serves BPE (SmolLM2) and SentencePiece (Gemma) tokenizers.
"""

from __future__ import annotations

from dataclasses import dataclass

from grape.tools.calls import ToolCall
from grape.tools.parse import CallSpans

MAX_WEIGHT = 9.0
_CLOSERS = "'\"])}"
_DELIMITERS = ",)}"


@dataclass(frozen=True)
class KeyCharacters:
    key: frozenset[int]  # character positions in the response text that decide the tool choice (K)
    closing: frozenset[int]  # character positions that close an argument value (P)


def key_characters(text: str, calls: list[ToolCall], spans: list[CallSpans], tool_names: list[str]) -> KeyCharacters:
    """K's and P's characters in ``text`` for its calls (`parse.parse_calls`), given the tools offered."""
    key, closing = set(), set()
    for call, span in zip(calls, spans, strict=True):
        start, end = span.name
        key.add(start)
        for other in tool_names:
            if other == call.name:
                continue
            shared = _shared_prefix(call.name, other)
            if shared > 0:  # 0: they differ at the first character, already in K
                key.add(start + shared if shared < end - start else _next_visible(text, end))
        for value_start, value_end in span.values:
            if value_end > value_start and text[value_end - 1] in _CLOSERS:
                closing.add(value_end - 1)
            after = _next_visible(text, value_end)
            if after < len(text) and text[after] in _DELIMITERS:
                closing.add(after)
    return KeyCharacters(frozenset(p for p in key if p < len(text)), frozenset(closing))


def token_weights(
    token_spans: list[tuple[int, int] | None], characters: KeyCharacters, max_weight: float = MAX_WEIGHT
) -> list[float]:
    """One weight per response token: w on K's tokens, 1 elsewhere (see the module's docstring).

    Args:
        token_spans: [T] each response token's [start, end) in the response text, None for a token that
            covers no response character (an end marker). Spans are in order and do not overlap.
        characters: K's and P's character positions.
    Returns:
        [T] floats.
    """
    key = {_token_at(token_spans, p) for p in characters.key} - {None}
    closing = {_token_at(token_spans, p) for p in characters.closing} - {None} - key
    others = len(token_spans) - len(key) - len(closing)
    weight = min(others / len(key), max_weight) if key and len(key) < others else 1.0
    return [weight if i in key else 1.0 for i in range(len(token_spans))]


def _token_at(token_spans: list[tuple[int, int] | None], position: int) -> int | None:
    """The token that covers character ``position``; where none does (a tokenizer's offsets may leave out a
    space it merged), the first token that ends after it."""
    for index, span in enumerate(token_spans):
        if span is not None and span[1] > position:
            return index
    return None


def _shared_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _next_visible(text: str, at: int) -> int:
    while at < len(text) and text[at] in " \t":
        at += 1
    return at
