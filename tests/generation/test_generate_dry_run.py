"""`grape generate --dry-run`: counts, prompt tokens per generator against the tokenizer's ids of the
hand-rendered text, rows too long for the context, the estimate from a measured rate; nothing written."""

from __future__ import annotations

import json

import pytest

from grape.cli import main
from grape.data.tables import read_sidecar
from grape.generation.backend import Sampling
from grape.generation.dry_run import plan_generation
from grape.generation.generate import generate
from grape.generation.settings import GenerateSettings

ROWS = [
    {"id": "long", "prompt": "Anna has 12 red, 7 blue and 30 green marbles in three old jars. She gives a third of "
     "the green ones to her brother and loses two blue ones. How many marbles does she have now?", "answer": "#### 37"},
    {"id": "short", "prompt": "2 + 2?", "answer": "#### 4"},
    {"id": "nogold", "prompt": "How many legs do three cats have?"},
]  # fmt: skip
TEMPLATE = "Rewrite this solution.\nProblem: {{ instruction }}\nSolution: {{ answer }}\nRewrite:"
CONTEXT = 512  # the tiny Llama's max_position_embeddings


def _files(tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    template = tmp_path / "para.jinja"
    template.write_text(TEMPLATE)
    return items, template


def _settings(tiny_smol_dir, template, max_new_tokens, **more):
    models = [{"name": "self", "model": str(tiny_smol_dir), "template": "paper", "sampling": {"n": 2}},
              {"name": "para", "model": str(tiny_smol_dir), "template": str(template)}]  # fmt: skip
    return GenerateSettings(models=models, sampling=Sampling(max_new_tokens=max_new_tokens), dtype="float32",
                            device="cpu", batch_size=1, **more)  # fmt: skip


def test_counts_prompt_tokens_and_too_long_rows_per_generator_and_writes_nothing(tiny_smol_dir, tmp_path):
    from transformers import AutoTokenizer

    items, template = _files(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tiny_smol_dir)
    paper = [len(tokenizer(f"Question: {r['prompt']}\nAnswer:")["input_ids"]) for r in ROWS]
    para = [len(tokenizer(f"Rewrite this solution.\nProblem: {r['prompt']}\nSolution: {r['answer']}\nRewrite:")
                ["input_ids"]) for r in ROWS[:2]]  # fmt: skip
    max_new = CONTEXT - sorted(paper)[1] + 1  # the two longer paper prompts no longer fit
    out = tmp_path / "pool.jsonl"
    plan = plan_generation(items, out, _settings(tiny_smol_dir, template, max_new, reference_field="answer"))
    own, rewrite = plan.generators
    assert (own.template, own.to_make, own.existing, own.context) == ("paper", 6, 0, CONTEXT)
    assert (own.prompt_tokens, own.longest_prompt) == (2 * sum(paper), max(paper))  # n=2: each prompt twice
    assert own.too_long == sum(1 for n in paper if n + max_new > CONTEXT) == 2
    assert (rewrite.to_make, rewrite.unrenderable) == (3, 1)  # `nogold` has no answer for the template
    assert (rewrite.prompt_tokens, rewrite.longest_prompt) == (sum(para), max(para))
    assert rewrite.too_long == sum(1 for n in para if n + max_new > CONTEXT)
    assert own.seconds is None and rewrite.seconds is None  # no rate measured yet
    assert (plan.reference.added, plan.reference.missing) == (2, 1)
    assert plan.rows == {"input": 3, "output": 3, "generated_for": 3, "unreadable": 0, "past_limit": 0}
    assert sorted(tmp_path.iterdir()) == sorted([items, template])  # no output, no sidecar, no journal


def test_the_estimate_comes_from_the_rate_an_earlier_run_into_the_output_measured(tiny_smol_dir, tmp_path):
    items, template = _files(tmp_path)
    out = tmp_path / "pool.jsonl"
    generate(items, out, _settings(tiny_smol_dir, template, 4, limit=1))  # a trial on the first row
    measured = read_sidecar(out)["generators"]["self"]["measured"]
    assert measured["candidates"] == 2 and measured["seconds"] > 0
    plan = plan_generation(items, out, _settings(tiny_smol_dir, template, 4))
    own, rewrite = plan.generators
    assert (own.to_make, own.existing, rewrite.to_make, rewrite.existing) == (4, 2, 2, 1)
    assert own.seconds == pytest.approx(4 * measured["seconds"] / measured["candidates"])
    rate = read_sidecar(out)["generators"]["para"]["measured"]
    assert rewrite.seconds == pytest.approx(2 * rate["seconds"] / rate["candidates"])


def test_the_command_line_dry_run_prints_the_plan(tiny_smol_dir, tmp_path, capsys):
    items, template = _files(tmp_path)
    out = tmp_path / "pool.jsonl"
    para = json.dumps({"name": "para", "model": str(tiny_smol_dir), "template": str(template)})
    argv = ["generate", str(items), "-o", str(out), "--model", f"self={tiny_smol_dir}", "--model", para,
            "--template", "paper", "--limit", "2", "--reference-field", "answer", "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    shown = capsys.readouterr().err
    assert "3 input rows; 2 to generate for" in shown and "nothing written" in shown
    assert "para.jinja" in shown and "est. time unknown" in shown
    assert "reference (answer): 2 to add" in shown
    assert not out.exists()


def test_the_dry_run_beside_an_openai_generator_shows_what_it_cannot_count(tiny_smol_dir, tmp_path, capsys):
    """An OpenAI-compatible server's tokenizer is not local: its prompt tokens and too-long rows are "?" (the
    table printed them through a format of None before), the local generator's are counted."""
    items, _ = _files(tmp_path)
    out = tmp_path / "pool.jsonl"
    argv = ["generate", str(items), "-o", str(out), "--model", f"self={tiny_smol_dir}", "--model",
            "big=openai:my-model@http://127.0.0.1:9/v1", "--dry-run"]  # fmt: skip
    assert main(argv) == 0
    shown = capsys.readouterr().err
    assert "big: prompt tokens unknown" in shown and "nothing written" in shown
    assert f"(context {CONTEXT:,})" in shown
    assert not out.exists()
