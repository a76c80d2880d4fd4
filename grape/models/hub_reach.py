"""A Hub id on a machine that cannot reach the Hub: its cached snapshot, or a one-line error at once.

Given a Hub id it has not cached, the Hub client retries for ~50 seconds on a machine without a network (five
retries with back-off, printed line by line) before transformers says it could not connect. grape asks once per
process whether the Hub's host answers (a TCP connection, a few seconds at most) and, when it does not or when
``HF_HUB_OFFLINE`` is set, resolves the id in the local Hugging Face cache itself: a cached model loads from its
snapshot folder without a request; an id that is not cached is refused at once, with the embedded model a typo
was probably meant to be.
"""

from __future__ import annotations

import difflib
import os
import socket
from functools import cache
from urllib.parse import urlparse

from grape.errors import GrapeError

PROBE_SECONDS = 3.0
# With a proxy the Hub's host may answer only through it: the Hub client is left to ask.
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


@cache
def hub_reachable() -> bool:
    """Whether the Hub (``HF_ENDPOINT``, default huggingface.co) accepts a connection; False under HF_HUB_OFFLINE."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    endpoint = urlparse(constants.ENDPOINT)
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        with socket.create_connection((endpoint.hostname, port), timeout=PROBE_SECONDS):
            return True
    except OSError:
        return False


def cached_snapshot(spec: str, known: list[str]) -> str:
    """The local snapshot folder of Hub id ``spec`` (its ``main``); a GrapeError naming ``spec`` when it is not
    cached, with a "did you mean" among ``known`` (the embedded names)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return snapshot_download(spec, local_files_only=True)
    except LocalEntryNotFoundError:
        close = difflib.get_close_matches(spec, known, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; the embedded models: {', '.join(known)}"
        why = "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else f"{constants.ENDPOINT} is out of reach"
        message = (f"{spec}: not a model directory, a .gguf file or an embedded model, and as a Hub id not in the "
                   f"Hugging Face cache ({constants.HF_HUB_CACHE}) while {why}{hint}")  # fmt: skip
        raise GrapeError(message) from None
