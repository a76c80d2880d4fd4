"""Real generation with the embedded smollm2-135m-instruct (and the tiny Gemma for the few-shot path)."""

from __future__ import annotations

import json

import pytest

from grape.data.layout import load_instructions
from grape.generation.backend import Request, Sampling
from grape.generation.generate import generate, journal_path
from grape.generation.hf_backend import HFBackend
from grape.generation.settings import GenerateSettings
from grape.text import Renderer

ROWS = [
    {"id": "m1", "prompt": "Tom has 45 marbles. He gives 18 to his sister. How many are left?", "answer": "27",
     "candidates": [{"text": "45 - 18 = 27. The answer is 27.", "source": "reference"}]},
    {"id": "o1", "prompt": "Give one tip for staying focused.",
     "candidates": [{"text": "Put your phone in another room.", "source": "reference"}]},
    {"id": "o2", "prompt": "Name a large ocean.", "candidates": []},
]  # fmt: skip


@pytest.fixture(scope="module")
def smol(smollm2):
    return HFBackend(smollm2, batch_size=4)


@pytest.fixture(scope="module")
def tiny_backend(tiny_model_dir):
    """The tiny random Gemma 3 with the real Gemma tokenizer (a base tokenizer: no chat template)."""
    return HFBackend(str(tiny_model_dir), dtype="float32", device="cpu")


def _settings(n: int, max_new_tokens: int = 10, temperature: float = 0.7) -> GenerateSettings:
    sampling = Sampling(n=n, temperature=temperature, max_new_tokens=max_new_tokens, seed=7)
    return GenerateSettings(models=["smol=smollm2-135m-instruct"], sampling=sampling)


def _input(tmp_path, rows=ROWS):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _generated(rows, source="smol"):
    return [(r["id"], c["sample"]) for r in rows for c in r["candidates"] if c["source"] == source]


def test_generates_samples_appends_them_and_never_duplicates(smol, tmp_path):
    source, out = _input(tmp_path), tmp_path / "pool.jsonl"
    rows, (report,) = generate(source, out, _settings(n=2), backends={"smol": smol})
    assert (report.generated, report.failed) == (6, 0)
    assert sorted(_generated(rows)) == [(i, s) for i in ("m1", "o1", "o2") for s in (0, 1)]
    assert [c["source"] for c in rows[0]["candidates"]] == ["reference", "smol", "smol"]
    new = [c for r in rows for c in r["candidates"] if c["source"] == "smol"]
    assert all(c["text"].strip() and 1 <= c["n_tokens"] <= 10 for c in new)
    assert report.tokens == sum(c["n_tokens"] for c in new)
    # The output is the grouped layout that scoring reads; the answer and reference are kept.
    instructions = load_instructions(out)
    assert [len(i.candidates) for i in instructions] == [3, 3, 2] and instructions[0].answer == "27"
    meta = json.loads((tmp_path / "pool.jsonl.meta.json").read_text())
    assert meta["generators"]["smol"]["prompt_format"] == "chat"
    assert meta["generators"]["smol"]["sampling"] == {"n": 2, "temperature": 0.7, "top_p": 1.0,
                                                      "max_new_tokens": 10, "seed": 7, "stop": []}  # fmt: skip
    before = out.read_text()
    _, (again,) = generate(source, out, _settings(n=2), backends={"smol": smol})
    assert (again.generated, again.existing) == (0, 6)
    assert out.read_text() == before
    rows, (more,) = generate(source, out, _settings(n=3), backends={"smol": smol})
    assert (more.generated, more.existing) == (3, 6)  # only sample 2 is new
    assert sorted(_generated(rows)) == [(i, s) for i in ("m1", "o1", "o2") for s in (0, 1, 2)]


def test_an_interrupted_run_resumes_from_its_journal(smol, tmp_path):
    source, out = _input(tmp_path), tmp_path / "pool.jsonl"
    kept = {"id": "o1", "source": "smol", "sample": 0, "text": "Written before the crash.", "n_tokens": 5,
            "finish_reason": "stop"}  # fmt: skip
    journal_path(out).write_text(json.dumps(kept) + "\n" + '{"id": "o2", "sou')  # the last line was torn
    rows, (report,) = generate(source, out, _settings(n=1, max_new_tokens=4), backends={"smol": smol})
    assert (report.generated, report.existing) == (2, 1)
    assert [c["text"] for c in rows[1]["candidates"] if c["source"] == "smol"] == ["Written before the crash."]
    assert sorted(_generated(rows)) == [("m1", 0), ("o1", 0), ("o2", 0)]
    assert not journal_path(out).exists()


def test_left_padding_batched_greedy_equals_one_at_a_time(smollm2):
    prompts = ["What is 3 + 4?", "Write one sentence about the sea and the wind over it.", "Hi"]
    requests = [Request(str(i), 0, p) for i, p in enumerate(prompts)]
    greedy = Sampling(temperature=0, max_new_tokens=8)
    batched = {c.request.id: c.text for c in HFBackend(smollm2, batch_size=3).generate(requests, greedy)}
    single = {c.request.id: c.text for c in HFBackend(smollm2, batch_size=1).generate(requests, greedy)}
    assert batched == single
    assert len(set(batched.values())) == 3


def test_a_base_model_gets_the_few_shot_prefix_and_stops_at_the_next_question(tiny_backend):
    assert tiny_backend.prompt_format == "few-shot"  # the Gemma base tokenizer has no chat template
    ids = tiny_backend.prompt_ids("Name a colour.")
    text = tiny_backend.tokenizer.decode(ids)
    assert text == "<bos>" + Renderer(tiny_backend.tokenizer, "few-shot").prompt_text("Name a colour.").rstrip()
    assert text.endswith("Question: Name a colour.\nAnswer:")
    (done,) = tiny_backend.generate([Request("a", 0, "Name a colour.")], Sampling(max_new_tokens=5))
    assert done.n_tokens <= 5 and "\nQuestion:" not in done.text


def test_plain_prompt_list_in_a_text_file(smol, tmp_path):
    source = tmp_path / "prompts.txt"
    source.write_text("Name a fruit.\n\nName a tree.\n")
    rows, _ = generate(source, tmp_path / "pool.jsonl", _settings(n=1, max_new_tokens=3), backends={"smol": smol})
    assert [r["prompt"] for r in rows] == ["Name a fruit.", "Name a tree."]
    assert [[c["source"] for c in r["candidates"]] for r in rows] == [["smol"], ["smol"]]
    assert len({r["id"] for r in rows}) == 2
