"""The questions rl reads: a prompt over max_prompt_tokens is refused (or, with on_error skip, left out and
counted), never cut; a prompt within it keeps all its tokens, the system turn's tool list first among them."""

import json

import pytest
from transformers import AutoTokenizer

from grape.data.tables import write_rows
from grape.errors import InputError
from grape.rl.prompts import read_questions, read_questions_skipping
from grape.rl.run import rl
from grape.rl.settings import RLSettings
from grape.text import Renderer

TOOLS = "You can call these tools: get_weather(city: str), get_time(zone: str), convert(amount: float, to: str)."
LONG = [{"role": "system", "content": TOOLS}, {"role": "user", "content": "Weather in Paris?"}]


@pytest.fixture(scope="module")
def renderer(tiny_llama_dir):
    return Renderer(AutoTokenizer.from_pretrained(tiny_llama_dir), "chat", True)


def _rows(tmp_path):
    return write_rows([{"prompt": "2 + 2?", "answer": "4"}, {"prompt": LONG, "answer": "get_weather"}],
                      tmp_path / "q.jsonl")  # fmt: skip


def test_a_prompt_over_the_limit_is_a_one_line_error_naming_file_row_tokens_and_limit(renderer, tmp_path):
    data, n = _rows(tmp_path), len(renderer.generation_ids(LONG))
    limit = len(renderer.generation_ids("2 + 2?"))
    with pytest.raises(InputError, match=rf"q.jsonl, row 2, field 'prompt': {n} tokens, over max_prompt_tokens "
                       rf"{limit} \(raise --max-prompt-tokens, or --on-error skip"):  # fmt: skip
        read_questions(data, renderer, "prompt", "answer", limit)
    whole = read_questions(data, renderer, "prompt", "answer", n)  # at the limit: all of it, tools first
    assert whole[1].prompt_ids == renderer.generation_ids(LONG)
    assert renderer.tokenizer.decode(whole[1].prompt_ids).count("get_weather(city: str)") == 1


def test_skipping_leaves_out_the_long_prompt_and_names_it(renderer, tmp_path):
    data = _rows(tmp_path)
    limit = len(renderer.generation_ids("2 + 2?"))
    kept, skipped = read_questions_skipping(data, renderer, "prompt", "answer", limit)
    assert [q.row for q in kept] == [1] and [(e.row, e.field) for e in skipped] == [(2, "prompt")]
    with pytest.raises(InputError, match=r"all 2 rows skipped; the first: .*row 1, field 'prompt': \d+ tokens"):
        read_questions_skipping(data, renderer, "prompt", "answer", limit - 1)


def test_a_run_that_skips_long_prompts_records_them(tiny_llama_dir, tmp_path, capsys):
    data, out = _rows(tmp_path), tmp_path / "rl"
    renderer = Renderer(AutoTokenizer.from_pretrained(tiny_llama_dir), "paper", True)
    limit = len(renderer.generation_ids("2 + 2?"))
    settings = RLSettings(model=str(tiny_llama_dir), template="paper", verifier="number", batch_size=1, max_steps=1,
                          max_new_tokens=2, device="cpu", max_prompt_tokens=limit, on_error="skip")  # fmt: skip
    result = rl(data, out, settings)
    assert len(result.skipped) == 1
    meta = json.loads((out / "grape-rl.json").read_text())
    assert (meta["questions"], meta["skipped_rows"]) == (1, 1)
    assert meta["skipped"][0]["row"] == 2 and "over max_prompt_tokens" in meta["skipped"][0]["reason"]
    assert "Rows left out (`on_error: skip`): 1, each listed" in (out / "README.md").read_text()
    assert "skipped 1 of 2 rows (--on-error skip)" in capsys.readouterr().err
