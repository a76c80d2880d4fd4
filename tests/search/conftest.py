"""Fixtures of the iTool tests: the tiny SmolLM2-tokenizer Llama (tests/conftest.py) loaded, and the hand-made
conversations prepared as tool-calling rows for it."""

import pytest
from tool_rows import TRAJECTORIES

from grape.data.tables import write_rows


@pytest.fixture(scope="session")
def tiny_smol(tiny_smol_dir):
    from grape.models.load import load_model

    return load_model(str(tiny_smol_dir), "float32", "cpu")


@pytest.fixture(scope="session")
def tool_rows(tmp_path_factory, tiny_smol_dir):
    """The conversations as `grape tools prepare` rows for the tiny model (plain tools, chat template)."""
    from grape.tools.prepare import prepare

    folder = tmp_path_factory.mktemp("tool-rows")
    conversations = write_rows(TRAJECTORIES, folder / "conversations.jsonl")
    prepare(conversations, folder / "rows.jsonl", model=str(tiny_smol_dir))
    return folder / "rows.jsonl"
