"""`grape score --dry-run` and `--limit`: counts checked against the whole text's tokens and against what a real
run then does (a tiny random Gemma 3 with the real Gemma tokenizer, context 512 tokens)."""

import json
import os

import pytest
from reference import whole_text_ids

from grape.cli import main
from grape.console import console
from grape.data.tables import read_sidecar
from grape.models.load import load_model
from grape.scoring.dry_run import plan_score
from grape.scoring.score import ScoreSettings, score
from grape.scoring.settings import EngineSettings

ROWS = [
    {"id": "add", "prompt": "What is 2+2?",
     "candidates": [{"text": "It is 4.", "source": "a"}, {"text": "Two plus two equals four.", "source": "b"}]},
    {"id": "fruit", "prompt": "Name a fruit.",
     "candidates": [{"text": "A grape.", "source": "a"}, {"text": "", "source": "b"},
                    {"text": "Bananas are fruits.", "source": "c"}]},
    {"id": "hi", "prompt": "Say hi.", "candidates": [{"text": "Hi there!", "source": "a"}]},
]  # fmt: skip
LONG = {"id": "long", "prompt": "Write a lot.", "candidates": [{"text": "Done."}, {"text": "word " * 600}]}


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    return load_model(str(tiny_model_dir), "float32", "cpu")


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def settings(**fields):
    return ScoreSettings(dtype="float32", device="cpu", **fields)


def reference_counts(tokenizer, rows):
    """(prompt tokens once per instruction, prompt tokens once per candidate, response tokens), from the whole
    text's ids: the prompt is the text's ids up to `Answer:`, the response (EOS included) is the rest."""
    once = repeated = response = 0
    for row in rows:
        prompt = tokenizer(f"Question: {row['prompt']}\nAnswer:")["input_ids"]
        texts = [c["text"] for c in row["candidates"] if c["text"]]
        for text in texts:
            whole = whole_text_ids(tokenizer, "paper", row["prompt"], text)
            assert whole[: len(prompt)] == prompt  # every response here starts a new word: one shared prompt
            response += len(whole) - len(prompt)
        once, repeated = once + len(prompt), repeated + len(prompt) * len(texts)
    return once, repeated, response


def test_the_counts_are_the_whole_texts_tokens_and_the_engines_own_work(tiny, tmp_path):
    path, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "scores.parquet"
    plan = plan_score(path, out, settings(on_error="skip"), measure=False, loaded=tiny)
    once, repeated, response = reference_counts(tiny.tokenizer, ROWS)
    assert (plan.instructions, plan.rows, plan.to_score) == (3, 6, 5)
    assert plan.skipped == {"skipped:empty_response": 1}
    assert (plan.prompt_tokens, plan.prompt_tokens_repeated, plan.response_tokens) == (once, repeated, response)
    assert plan.engine_tokens == once + response and plan.context == 512
    assert (plan.done_instructions, plan.pending_instructions, plan.pending_tokens) == (0, 3, once + response)
    assert plan.rate is None and "no earlier run" in plan.rate_source
    assert sorted(os.listdir(tmp_path)) == ["in.jsonl"]  # nothing written: no table, no parts, no lock
    # A row of one token each splits every group into one piece per candidate, each repeating its prompt.
    one = settings(on_error="skip", engine=EngineSettings(max_row_tokens=1))
    assert plan_score(path, out, one, measure=False, loaded=tiny).engine_tokens == repeated + response
    # The real run's engine counts the same work (its rate's tokens), and skips what the plan said.
    rows = score(path, out, settings(on_error="skip"), loaded=tiny)
    assert read_sidecar(out)["rate"]["tokens"] == plan.engine_tokens
    assert [r["status"] for r in rows].count("skipped:empty_response") == 1


def test_too_long_candidates_are_counted_and_the_first_is_named(tiny, tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [ROWS[0], LONG])
    plan = plan_score(path, None, settings(), measure=False, loaded=tiny)
    n = len(whole_text_ids(tiny.tokenizer, "paper", LONG["prompt"], LONG["candidates"][1]["text"]))
    assert n > 512 and plan.skipped == {"skipped:too_long": 1} and plan.to_score == 3
    assert plan.first_problem == (f"{path}, row 2, field 'candidates[1]': prompt + response is {n} tokens, over the "
                                  "model's 512")  # fmt: skip
    skip = plan_score(path, None, settings(on_error="skip"), measure=False, loaded=tiny)
    assert skip.first_problem is None and skip.skipped == plan.skipped
    statuses = [r["status"] for r in score(path, None, settings(on_error="skip"), loaded=tiny)]
    assert statuses == ["scored", "scored", "scored", "skipped:too_long"]


def test_what_a_rerun_reuses_and_an_estimate_from_the_recorded_rate(tiny, tmp_path):
    path, out = write_jsonl(tmp_path / "in.jsonl", ROWS), tmp_path / "scores.parquet"
    first = score(path, out, settings(on_error="skip", limit=2), loaded=tiny)
    assert {r["id"] for r in first} == {"add", "fruit"}
    assert read_sidecar(out)["limit"] == {"instructions": 2, "of": 3, "left_out": 1}
    before = sorted(p.name for p in tmp_path.rglob("*"))
    plan = plan_score(path, out, settings(on_error="skip"), measure=False, loaded=tiny)
    assert (plan.done_instructions, plan.pending_instructions) == (2, 1)
    assert plan.output_state.startswith("resumes: 2 of 3 instructions already scored")
    assert plan.pending_tokens == len(whole_text_ids(tiny.tokenizer, "paper", "Say hi.", "Hi there!"))
    recorded = read_sidecar(out)["rate"]
    assert plan.rate.tokens_per_second == pytest.approx(recorded["tokens"] / recorded["seconds"])
    assert plan.rate_source == "recorded by the previous run of this output"
    assert plan.seconds_left == pytest.approx(plan.pending_tokens / plan.rate.tokens_per_second)
    assert sorted(p.name for p in tmp_path.rglob("*")) == before
    score(path, out, settings(on_error="skip"), loaded=tiny)
    done = plan_score(path, out, settings(on_error="skip"), measure=False, loaded=tiny)
    assert done.output_state.startswith("complete") and done.pending_tokens == 0 and done.seconds_left is None
    other = plan_score(path, out, settings(on_error="skip", eos=False), measure=False, loaded=tiny)
    assert other.done_instructions == 0 and "no saved part matches" in other.output_state


def test_without_a_recorded_rate_about_a_batch_is_timed(tiny, tmp_path):
    rows = [{"id": f"q{i}", "prompt": f"Question number {i}?", "candidates": [{"text": "An answer. " * 8}] * 4}
            for i in range(9)]  # fmt: skip
    path, engine = write_jsonl(tmp_path / "in.jsonl", rows), EngineSettings(batch_tokens=256, max_row_tokens=256)
    each = plan_score(path, None, settings(engine=engine, limit=1), measure=False, loaded=tiny).engine_tokens
    plan = plan_score(path, None, settings(engine=engine), loaded=tiny)
    # after a warm-up on q0, the instructions from q1 on until a batch's 256 tokens are reached
    assert plan.rate is not None and plan.rate.device == "cpu" and plan.rate.tokens == -(-256 // each) * each
    assert plan.rate_source.startswith(f"measured now: {plan.rate.tokens:,} tokens of this input in ")
    assert plan.seconds_left == pytest.approx(plan.engine_tokens / plan.rate.tokens_per_second)


def test_the_command_line(tiny_model_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(console, "width", 200)  # no line wrapped in the middle of a phrase looked for
    path, out = write_jsonl(tmp_path / "in.jsonl", [*ROWS, LONG]), tmp_path / "scores.parquet"
    model = ["--model", str(tiny_model_dir), "--dtype", "float32", "--device", "cpu"]
    dry = ["--dry-run", "--no-measure"]
    assert main(["score", str(path), "-o", str(out), *model, *dry, "--limit", "3", "--on-error", "skip"]) == 0
    shown = capsys.readouterr().err
    assert "nothing written" in shown and "3 (the first 3 of 4)" in shown and "empty_response 1" in shown
    assert "none: no earlier run" in shown and not out.exists()
    assert main(["score", str(path), "-o", str(out), *model, *dry]) == 2  # the run's own error: an empty response
    assert "row 2, field 'candidates[1].text': empty response" in capsys.readouterr().err
    fits = write_jsonl(tmp_path / "fits.jsonl", [ROWS[0], LONG])
    assert main(["score", str(fits), "-o", str(out), *model, *dry]) == 0
    assert "with --on-error fail the run stops at:" in capsys.readouterr().err
    for extra, message in [(["--limit", "0"], "limit must be at least 1 instruction, not 0"),
                           (["--no-measure"], "--no-measure goes with --dry-run"),
                           (["--dry-run", "--ray"], "--dry-run plans a run in this process")]:  # fmt: skip
        assert main(["score", str(path), "-o", str(out), *model, *extra]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1
    assert not out.exists()
