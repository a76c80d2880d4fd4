"""examples/s3ft.yaml: a valid pipeline on the shared GSM8K slice, and its paraphrase template is SmolLM2's own
chat format around a prompt that shows the gold solution."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from shared_data import shared_file

from grape.cli import main
from grape.pipeline import load_pipeline
from grape.text import Renderer

EXAMPLES = Path(__file__).parents[2] / "examples"


@pytest.fixture(scope="module")
def gsm8k_train() -> Path:
    shared_file("gsm8k/test.jsonl")  # the eval step's data
    return shared_file("gsm8k/train.jsonl")


def test_the_s3ft_pipeline_plans_self_paraphrase_and_reference_then_priority_selection(gsm8k_train, capsys):
    steps = {p.name: p for p in load_pipeline(EXAMPLES / "s3ft.yaml").steps}
    assert list(steps) == ["generate", "verify", "score", "select", "sft", "eval"]
    generate = steps["generate"].settings
    assert (generate.limit, generate.reference_field) == (16, "answer")
    own, paraphrase = generate.models
    assert (own["name"], own["template"], own["sampling"]) == ("self", "chat", {"temperature": 0})
    assert paraphrase["template"] == str(EXAMPLES / "s3ft_paraphrase.jinja")  # relative to the YAML
    assert steps["generate"].inputs["input"].resolve() == gsm8k_train.resolve()
    select = steps["select"].settings
    assert (select.strategy, select.require_correct) == ("priority:self,paraphrase,reference", True)
    assert steps["score"].settings.template == "chat" == steps["eval"].settings.template
    assert main(["run", "--dry-run", str(EXAMPLES / "s3ft.yaml")]) == 0
    assert "dry run" in capsys.readouterr().err


def test_the_paraphrase_template_is_smollm2s_chat_format_around_the_gold_solution(gsm8k_train):
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])
    row = json.loads(gsm8k_train.open(encoding="utf-8").readline())
    text = Renderer(tokenizer, str(EXAMPLES / "s3ft_paraphrase.jinja"), eos=False).prompt_text(row["question"], row)
    start, end = "<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"
    user = text[text.index(start) + len(start) : -len(end)]
    assert text.endswith(end) and f"Problem: {row['question']}" in user and f"Solution: {row['answer']}" in user
    messages = [{"role": "user", "content": user}]
    assert text == tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
