"""Text that JSON allows but Unicode does not: lone surrogates.

A JSON escape such as ``"a \\ud800 b"`` decodes to a Python string that has no UTF-8 encoding (the
half of a pair without its other half; LLM outputs cut in the middle of an emoji carry them). Left
in, it crashes the tokenizer or the table writer far from its row. Validation finds it, naming the
field, and the text kept in the output carries U+FFFD (the replacement character) in its place.
"""

from __future__ import annotations

import re
from typing import Any

# json.loads joins a valid escaped pair into one character, so any surrogate left in a string is alone.
_SURROGATE = re.compile("[\ud800-\udfff]")


def first_lone_surrogate(value: Any, path: str = "") -> tuple[str, str] | None:
    """(field path, message) for the first string inside a JSON value that holds a lone surrogate,
    or None. The path reads like the input's own fields: ``candidates[1].text``."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is not None:
            code = f"\\u{ord(found.group()):04x}"
            return path, f"lone surrogate {code} at character {found.start() + 1} (not valid Unicode text)"
    elif isinstance(value, dict):
        for key, item in value.items():
            name = f"{path}.{key}" if path else str(key)
            if isinstance(key, str) and _SURROGATE.search(key):
                return without_lone_surrogates(name), "lone surrogate in a key (not valid Unicode text)"
            hit = first_lone_surrogate(item, name)
            if hit is not None:
                return hit
    elif isinstance(value, list):
        for index, item in enumerate(value):
            hit = first_lone_surrogate(item, f"{path}[{index}]")
            if hit is not None:
                return hit
    return None


def without_lone_surrogates(value: Any) -> Any:
    """A copy of a JSON value (strings, lists, dicts, keys too) with each lone surrogate as U+FFFD."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {without_lone_surrogates(key): without_lone_surrogates(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_lone_surrogates(item) for item in value]
    return value
