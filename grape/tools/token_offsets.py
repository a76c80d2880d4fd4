"""Where each response token sits in the response text: the character spans behind the key-token weights.

The ids are the Renderer's (grape.text: the whole text's tokens, split where the response starts, plus the
end marker); this asks the same tokenizer for the same text's offsets and checks that it gives the same ids,
so the weights line up with the tokens `grape sft` trains on, one per response token.
"""

from __future__ import annotations

from typing import Any

from grape.data.records import Messages
from grape.errors import GrapeError
from grape.text import Renderer


def response_token_spans(renderer: Renderer, prompt: str | Messages, response: str) -> list[tuple[int, int] | None]:
    """[T] the [start, end) of each response token in ``response`` (clipped to it), None for a token that
    covers none of it (the end marker). T = len(renderer.encode(prompt, [response])[0].response)."""
    tokenizer = renderer.tokenizer
    if not getattr(tokenizer, "is_fast", False):
        raise GrapeError("key-token weights need a fast tokenizer (one that gives character offsets)")
    encoded = renderer.encode(prompt, [response])[0]
    text = renderer.prompt_text(prompt)
    whole = text + response + (renderer.end_text or "")
    bos = tokenizer.bos_token
    special = not (bos and text.startswith(bos))  # as the Renderer decides
    out: dict[str, Any] = tokenizer(whole, add_special_tokens=special, return_offsets_mapping=True)
    ids, offsets = list(out["input_ids"]), [tuple(o) for o in out["offset_mapping"]]
    while special and ids and offsets[-1] == (0, 0) and ids[-1] in tokenizer.all_special_ids:
        ids.pop(), offsets.pop()
    expected = encoded.prompt + encoded.response[: len(encoded.response) - len(renderer.end_ids)]
    if ids != expected:
        raise GrapeError("the tokenizer's offsets do not give the Renderer's ids for this text (a grape defect)")
    spans: list[tuple[int, int] | None] = []
    for start, end in offsets[len(encoded.prompt) :]:
        start, end = start - len(text), end - len(text)
        spans.append((max(start, 0), min(end, len(response))) if end > 0 and start < len(response) else None)
    return spans + [None] * len(renderer.end_ids)
