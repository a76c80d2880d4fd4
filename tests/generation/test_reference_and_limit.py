"""The gold answer as a `reference` candidate, and `limit`: the first N rows, then the same output extended."""

from __future__ import annotations

import json

import pytest

from grape.data.tables import read_sidecar
from grape.errors import GrapeError
from grape.generation.backend import Sampling
from grape.generation.generate import generate, journal_path
from grape.generation.hf_backend import HFBackend
from grape.generation.reference import reference_text
from grape.generation.settings import GenerateSettings

ROWS = [
    {"id": "a", "prompt": "1 + 1?", "answer": "1 + 1 = 2. #### 2"},
    {"id": "b", "prompt": "2 + 2?"},  # no gold answer
    {"id": "c", "prompt": "3 + 3?", "answer": 6},  # a bare number
    {"id": "d", "prompt": "4 + 4?", "answer": "   "},  # blank
    {"id": "e", "prompt": "5 + 5?", "answer": "10", "solution": "Five and five make 10.",
     "candidates": [{"text": "It is 10.", "source": "reference"}]},  # already has a reference
]  # fmt: skip


def _input(tmp_path, rows=ROWS):
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _sources(row):
    return [(c["source"], c["text"]) for c in row["candidates"]]


def test_the_reference_field_is_one_more_candidate_and_rows_without_it_are_counted(tmp_path):
    out = tmp_path / "pool.jsonl"
    rows, reports = generate(_input(tmp_path), out, reference_field="answer")
    assert reports == []  # no generator: no model was asked
    assert [_sources(r) for r in rows] == [
        [("reference", "1 + 1 = 2. #### 2")], [], [("reference", "6")], [], [("reference", "It is 10.")]
    ]  # fmt: skip
    assert rows[0]["candidates"][0] == {"text": "1 + 1 = 2. #### 2", "source": "reference", "sample": 0,
                                        "n_tokens": None, "finish_reason": None}  # fmt: skip
    meta = read_sidecar(out)
    assert meta["reference"] == {"field": "answer", "added": 2, "existing": 1, "missing": 2, "missing_ids": ["b", "d"]}
    assert meta["rows"] == {"input": 5, "output": 5, "generated_for": 5, "unreadable": 0, "past_limit": 0}
    # a second run adds nothing twice
    again, _ = generate(_input(tmp_path), out, reference_field="answer")
    assert [_sources(r) for r in again] == [_sources(r) for r in rows]
    assert read_sidecar(out)["reference"]["existing"] == 3


def test_any_carried_column_can_be_the_reference(tmp_path):
    rows, _ = generate(_input(tmp_path, ROWS[4:]), tmp_path / "pool.jsonl", reference_field="solution")
    assert _sources(rows[0]) == [("reference", "It is 10.")]  # the input's own reference is kept, not doubled
    fresh = [{"id": "x", "prompt": "5 + 5?", "solution": "Five and five make 10."}]
    rows, _ = generate(_input(tmp_path, fresh), tmp_path / "other.jsonl", reference_field="solution")
    assert _sources(rows[0]) == [("reference", "Five and five make 10.")]


def test_reference_text_takes_strings_and_numbers_only():
    assert [reference_text(v) for v in ("x", " ", 3, 2.5, True, None, ["x"], {"a": 1})] == [
        "x", None, "3", "2.5", None, None, None, None
    ]  # fmt: skip


def test_a_generator_may_not_take_the_reference_source_name(tmp_path):
    with pytest.raises(GrapeError, match="a generator is named 'reference'"):
        generate(_input(tmp_path), tmp_path / "o.jsonl", models=["reference=openai:m@http://127.0.0.1:9/v1"],
                 reference_field="answer")  # fmt: skip
    with pytest.raises(GrapeError, match="no generator"):
        generate(_input(tmp_path), tmp_path / "o.jsonl")


def test_limit_takes_the_first_rows_and_a_later_run_extends_the_same_output(tmp_path):
    source, out = _input(tmp_path), tmp_path / "pool.jsonl"
    rows, _ = generate(source, out, reference_field="answer", limit=2)
    assert [r["id"] for r in rows] == ["a", "b"]
    assert read_sidecar(out)["rows"] == {"input": 5, "output": 2, "generated_for": 2, "unreadable": 0,
                                         "past_limit": 3}  # fmt: skip
    rows, _ = generate(source, out, reference_field="answer", limit=4)
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert read_sidecar(out)["reference"] == {"field": "answer", "added": 1, "existing": 1, "missing": 2,
                                              "missing_ids": ["b", "d"]}  # fmt: skip
    # a smaller limit works on fewer rows but keeps every row the output holds
    rows, _ = generate(source, out, reference_field="answer", limit=1)
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert read_sidecar(out)["rows"]["generated_for"] == 1
    rows, _ = generate(source, out, reference_field="answer")
    assert [r["id"] for r in rows] == ["a", "b", "c", "d", "e"]
    with pytest.raises(GrapeError, match="at least 1"):
        generate(source, out, reference_field="answer", limit=0)


def test_an_output_that_is_not_the_inputs_first_rows_is_refused(tmp_path):
    out = tmp_path / "pool.jsonl"
    generate(_input(tmp_path, ROWS[1:3]), out, reference_field="answer")
    with pytest.raises(GrapeError, match="holds other instructions than the input"):
        generate(_input(tmp_path), out, reference_field="answer")


def test_limit_with_a_model_generates_for_the_first_rows_only_and_keeps_foreign_journal_lines(tiny_smol_dir, tmp_path):
    source, out = _input(tmp_path), tmp_path / "pool.jsonl"
    backend = HFBackend(str(tiny_smol_dir), dtype="float32", device="cpu")
    # an interrupted full run left a completion for row e, which this limited run does not hold
    kept = {"id": "e", "source": "tiny", "sample": 0, "text": "Ten.", "n_tokens": 2, "finish_reason": "stop"}
    journal_path(out).write_text(json.dumps(kept) + "\n")
    settings = GenerateSettings(models=["tiny=model"], sampling=Sampling(max_new_tokens=3), limit=2)
    rows, (report,) = generate(source, out, settings, backends={"tiny": backend})
    assert [r["id"] for r in rows] == ["a", "b"] and (report.requested, report.generated) == (2, 2)
    assert json.loads(journal_path(out).read_text()) == kept  # not lost: the next run places it
    rows, (report,) = generate(source, out, settings, backends={"tiny": backend}, limit=None)
    assert (report.requested, report.existing, report.generated) == (5, 3, 2)
    assert [c["text"] for c in rows[4]["candidates"] if c["source"] == "tiny"] == ["Ten."]
    assert not journal_path(out).exists()


def test_extending_an_output_refuses_a_generator_drawn_otherwise_and_takes_more_samples(tiny_smol_dir, tmp_path):
    """Rows 1-2 at 3 new tokens, then rows 3-5 at 5 under the same name would pass as one source: refused,
    before any model work; more samples (n) or another seed draw from the same distribution: taken."""
    source, out = _input(tmp_path), tmp_path / "pool.jsonl"
    backend = HFBackend(str(tiny_smol_dir), dtype="float32", device="cpu")
    settings = GenerateSettings(models=["tiny=model"], sampling=Sampling(max_new_tokens=3), limit=2)
    generate(source, out, settings, backends={"tiny": backend})
    made = read_sidecar(out)["generators"]["tiny"]
    assert (made["spec"], made["template"], made["sampling"]["max_new_tokens"]) == ("hf:model", "auto", 3)
    before = out.read_bytes()
    for change, message in [
        ({"sampling": Sampling(max_new_tokens=5)}, "max_new_tokens 3, now 5"),
        ({"models": ["tiny=other-model"]}, "model 'hf:model', now 'hf:other-model'"),
        ({"prompt_format": "few-shot"}, "template 'auto', now 'few-shot'"),
    ]:
        with pytest.raises(GrapeError, match=f"generator 'tiny' made its samples here with other settings .*{message}"):
            generate(source, out, settings, backends={"tiny": backend}, limit=None, **change)
        assert out.read_bytes() == before
    rows, (report,) = generate(source, out, settings, backends={"tiny": backend}, limit=None,
                               sampling=Sampling(max_new_tokens=3, n=2, seed=1))  # fmt: skip
    assert (report.existing, report.generated) == (2, 8)
