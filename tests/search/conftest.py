"""Fixtures of the iTool tests: a tiny random Llama with SmolLM2's tokenizer (its chat template) and the hand-made
conversations prepared as tool-calling rows for it."""

import pytest
from tool_rows import TRAJECTORIES

from grape.data.tables import write_rows


@pytest.fixture(scope="session")
def tiny_smol_dir(tmp_path_factory):
    from tiny_models import tiny_llama
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    path = tmp_path_factory.mktemp("tiny-smol")
    tiny_llama(vocab_size=len(tokenizer)).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


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
