"""The form of a Hugging Face Hub id, so that a local path that does not exist is not taken for one (torch-free:
the data readers and the model loader both ask)."""

from __future__ import annotations

import re

_HUB_NAME = re.compile(r"\w(?:[\w.-]{0,94}\w)?", re.ASCII)


def could_be_hub_id(spec: str) -> bool:
    """Whether ``spec`` has the form of a Hub id: NAME or OWNER/NAME (letters, digits, ``_.-``, at most 96
    characters each, no ``--`` or ``..``, not ending ``.git``), as huggingface_hub's ``validate_repo_id`` has it."""
    parts = spec.split("/")
    return (len(parts) <= 2 and all(_HUB_NAME.fullmatch(p) for p in parts)
            and "--" not in spec and ".." not in spec and not spec.endswith(".git"))  # fmt: skip
