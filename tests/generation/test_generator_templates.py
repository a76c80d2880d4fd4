"""Generators with their own template and sampling in one run (S3FT's self + paraphrase), on a tiny model.

The references are independent of grape's renderer: the prompt text is written out by hand, its ids are
the tokenizer's ids for that whole text, and greedy answers come from the model's own `generate`.
"""

from __future__ import annotations

import json

import pytest
import torch

from grape.data.tables import read_sidecar
from grape.generation.backend import Sampling
from grape.generation.generate import generate
from grape.generation.hf_backend import HFBackend
from grape.generation.settings import GenerateSettings

ROWS = [
    {"id": "q1", "prompt": "Tom has 3 apples and buys 2 more. How many?", "answer": "3 + 2 = 5. #### 5",
     "tests": ["assert f() == 5", "assert f() > 0"]},
    {"id": "q2", "prompt": "A box holds 4 eggs. How many in 2 boxes?", "answer": "4 * 2 = 8. #### 8", "tests": []},
    {"id": "q3", "prompt": "A row without a gold answer.", "tests": []},
]  # fmt: skip
# The file ends without a newline: the prompt ends in "Rewrite:", where the answer starts.
PARAPHRASE = (
    "Rewrite in your own words ({{ tests | length }} tests).\nQuestion: {{ instruction }}\nGold: {{ answer }}\nRewrite:"
)


def paraphrase_text(row: dict) -> str:
    """The paraphrase template rendered by hand."""
    head = f"Rewrite in your own words ({len(row['tests'])} tests).\n"
    return head + f"Question: {row['prompt']}\nGold: {row['answer']}\nRewrite:"


@pytest.fixture(scope="module")
def tiny(tiny_smol_dir):
    from grape.models.load import load_model

    return load_model(str(tiny_smol_dir), dtype="float32", device="cpu")


def _write(tmp_path, rows=ROWS):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    template = tmp_path / "paraphrase.jinja"
    template.write_text(PARAPHRASE)
    return path, template


def _greedy(tiny, ids: list[int], max_new_tokens: int) -> str:
    """The model's own greedy continuation of ``ids``, cut at EOS, as text."""
    with torch.inference_mode():
        mask = torch.ones(1, len(ids), dtype=torch.long)
        out = tiny.model.generate(input_ids=torch.tensor([ids]), attention_mask=mask, do_sample=False,
                                  max_new_tokens=max_new_tokens, pad_token_id=0)  # fmt: skip
    new = out[0, len(ids) :].tolist()
    configured = tiny.model.generation_config.eos_token_id
    eos = {tiny.tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])}
    end = next((i for i, t in enumerate(new) if t in eos), len(new))
    return tiny.tokenizer.decode(new[:end], skip_special_tokens=True).strip()


def test_the_jinja_prompt_is_the_whole_texts_tokens_and_sees_the_rows_fields(tiny, tmp_path):
    _, template = _write(tmp_path)
    backend = HFBackend(tiny, str(template))
    row = ROWS[0]
    fields = {k: v for k, v in row.items() if k != "prompt"}
    ids = backend.prompt_ids(row["prompt"], fields)
    assert ids == tiny.tokenizer(paraphrase_text(row))["input_ids"]
    assert tiny.tokenizer.decode(ids).endswith("Gold: 3 + 2 = 5. #### 5\nRewrite:")


def test_one_run_gathers_greedy_self_and_sampled_paraphrases_each_in_its_own_template(tiny_smol_dir, tiny, tmp_path):
    items, template = _write(tmp_path)
    models = [
        {"name": "self", "model": str(tiny_smol_dir), "template": "paper", "sampling": {"temperature": 0}},
        {"name": "paraphrase", "model": str(tiny_smol_dir), "template": str(template),
         "sampling": {"n": 3, "temperature": 1.0}},
    ]  # fmt: skip
    settings = GenerateSettings(models=models, sampling=Sampling(n=1, temperature=0.7, max_new_tokens=6, seed=1),
                                batch_size=1, dtype="float32", device="cpu")  # fmt: skip
    rows, (own, para) = generate(items, tmp_path / "pool.jsonl", settings)
    assert (own.generated, own.failed) == (3, 0)
    # q3 has no `answer`: its paraphrases fail with the reason, the other rows get theirs
    assert (para.generated, para.failed) == (6, 3)
    assert all("'answer' is undefined" in e for e in para.errors) and para.errors[0].startswith("q3/")
    by_id = {r["id"]: r for r in rows}
    for row in ROWS:
        self_texts = [c["text"] for c in by_id[row["id"]]["candidates"] if c["source"] == "self"]
        paper = f"Question: {row['prompt']}\nAnswer:"  # paper's trailing space goes with the answer
        assert self_texts == [_greedy(tiny, tiny.tokenizer(paper)["input_ids"], 6)]
    for row in ROWS[:2]:
        samples = sorted(
            (c["sample"], c["text"]) for c in by_id[row["id"]]["candidates"] if c["source"] == "paraphrase"
        )
        assert [s for s, _ in samples] == [0, 1, 2]
        assert len({t for _, t in samples}) > 1  # sampled at temperature 1, not greedy
    generators = read_sidecar(tmp_path / "pool.jsonl")["generators"]
    assert generators["self"]["sampling"]["temperature"] == 0.0 and generators["self"]["sampling"]["n"] == 1
    assert generators["paraphrase"]["sampling"] == {"n": 3, "temperature": 1.0, "top_p": 1.0, "max_new_tokens": 6,
                                                    "seed": 1, "stop": []}  # fmt: skip
    assert (generators["self"]["prompt_format"], generators["paraphrase"]["prompt_format"]) == ("paper", str(template))


def test_greedy_paraphrase_equals_the_models_own_greedy_answer_to_the_hand_rendered_prompt(tiny, tmp_path):
    items, template = _write(tmp_path, ROWS[:2])
    settings = GenerateSettings(models=[{"name": "paraphrase", "model": "tiny", "template": str(template)}],
                                sampling=Sampling(temperature=0, max_new_tokens=5))  # fmt: skip
    backend = HFBackend(tiny, str(template), batch_size=1)
    rows, _ = generate(items, tmp_path / "pool.jsonl", settings, backends={"paraphrase": backend})
    for row, source in zip(rows, ROWS[:2], strict=True):
        (text,) = [c["text"] for c in row["candidates"]]
        assert text == _greedy(tiny, tiny.tokenizer(paraphrase_text(source))["input_ids"], 5)
