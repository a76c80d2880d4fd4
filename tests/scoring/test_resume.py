"""Resumable scoring: parts keyed by settings and instruction, reused when they match, never mixed in
when they do not, and assembled into one row per input candidate, exactly once."""

import copy
import json
import random
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from grape.data.tables import read_sidecar
from grape.errors import InputError
from grape.models.fingerprint import loaded_fingerprint, model_fingerprint
from grape.models.load import load_model
from grape.scoring.keys import settings_key
from grape.scoring.parts import parts_root
from grape.scoring.score import SCORES_SCHEMA, ScoreSettings, score

WORDS = ["the", "a", "grape", "vine", "red", "green", "sweet", "sour", "answer", "is", "seven", "because"]


def synthetic_input(path, n: int = 24, seed: int = 0):
    """Grouped rows with 1-4 candidates each, an empty candidate (skipped when read) and one candidate
    too long for the tiny model's 512 positions (skipped when tokenised)."""
    rng = random.Random(seed)
    say = lambda lo, hi: " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi)))  # noqa: E731
    rows = []
    for i in range(n):
        candidates = [{"text": say(2, 24), "source": f"model-{k}"} for k in range(rng.randint(1, 4))]
        rows.append({"id": f"q{i:03d}", "prompt": say(3, 16), "candidates": candidates})
    rows[3]["candidates"].append({"text": "", "source": "model-empty"})
    rows[5]["candidates"].append({"text": "grape " * 600, "source": "model-long"})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def settings(**changes) -> ScoreSettings:
    return ScoreSettings(**{"dtype": "float32", "device": "cpu", "on_error": "skip", "part_size": 5, **changes})


def part_files(output):
    return sorted(parts_root(output).glob("*/part-*.parquet"))


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """Loaded once for this module (the CLI path, which loads the model itself, is in test_resume_kill.py)."""
    return load_model(str(tiny_model_dir), dtype="float32", device="cpu")


@pytest.fixture(scope="module")
def first_run(tiny, tmp_path_factory):
    """One uninterrupted run: its input, output and rows (tests below copy it before changing anything)."""
    folder = tmp_path_factory.mktemp("first")
    source = synthetic_input(folder / "in.jsonl")
    rows = score(source, folder / "scores.parquet", settings(), loaded=tiny)
    return source, folder / "scores.parquet", rows


def copy_run(first_run, tmp_path):
    source, output, _ = first_run
    shutil.copytree(output.parent, tmp_path, dirs_exist_ok=True)
    return tmp_path / source.name, tmp_path / output.name


def test_first_run_saves_one_part_per_chunk_and_accounts_for_everything(first_run):
    source, output, rows = first_run
    statuses = [r["status"] for r in rows]
    assert len(rows) == 24 + sum(len(json.loads(line)["candidates"]) - 1 for line in source.read_text().splitlines())
    assert statuses.count("skipped:empty_response") == 1 and statuses.count("skipped:too_long") == 1
    assert statuses.count("scored") == len(rows) - 2
    assert len(part_files(output)) == 5  # 24 instructions, 5 per part
    assert pq.read_table(output).to_pylist() == pa.Table.from_pylist(rows, schema=SCORES_SCHEMA).to_pylist()
    meta = read_sidecar(output)
    assert meta["parts"]["instructions"] == 24 and meta["parts"]["reused"] == 0
    assert meta["model"]["fingerprint"].startswith("memory:")


def test_rerun_reuses_every_part(first_run, tiny, tmp_path):
    source, output = copy_run(first_run, tmp_path)
    before = {p.name: p.stat().st_mtime_ns for p in part_files(output)}
    rows = score(source, output, settings(), loaded=tiny)
    assert rows == first_run[2]
    assert {p.name: p.stat().st_mtime_ns for p in part_files(output)} == before
    assert read_sidecar(output)["parts"]["reused"] == 24


def test_lost_parts_are_redone_and_nothing_is_duplicated(first_run, tiny, tmp_path):
    source, output = copy_run(first_run, tmp_path)
    parts = part_files(output)
    for lost in parts[1::2]:
        lost.unlink()
    (parts[0].parent / ".part-00009-x.parquet.123-abc.tmp").write_bytes(b"half a part")  # a write cut short
    shutil.copy(parts[0], parts[0].with_name("part-00000-retried.parquet"))  # a retried chunk saved twice
    parts[2].write_bytes(parts[2].read_bytes()[:100])  # damaged outside grape
    rows = score(source, output, settings(), loaded=tiny)
    assert rows == first_run[2]  # same chunks, same batches: bit for bit
    assert not list(parts[0].parent.glob("*.tmp"))
    assert read_sidecar(output)["parts"]["reused"] == 9  # parts 0 and 4 (5 + 4 instructions) were left whole


def test_score_changing_settings_get_their_own_parts(first_run, tiny, tmp_path):
    source, output = copy_run(first_run, tmp_path)
    no_eos = score(source, output, settings(eos=False), loaded=tiny)
    raw = score(source, output, settings(template="raw"), loaded=tiny)
    assert len({p.parent for p in part_files(output)}) == 3
    first = first_run[2]
    scored = [i for i, r in enumerate(first) if r["status"] == "scored"]
    assert all(first[i]["n_tokens"] - no_eos[i]["n_tokens"] == 1 for i in scored)
    assert all(first[i]["sum_logprob"] != raw[i]["sum_logprob"] for i in scored)


def test_batch_and_part_sizes_do_not_change_the_key(first_run, tiny, tmp_path):
    source, output = copy_run(first_run, tmp_path)
    changed = settings(part_size=7)
    changed.engine.batch_tokens = 64
    rows = score(source, output, changed, loaded=tiny)
    assert read_sidecar(output)["parts"]["reused"] == 24 and rows == first_run[2]


def test_edited_instruction_alone_is_scored_again(first_run, tiny, tmp_path):
    source, output = copy_run(first_run, tmp_path)
    lines = source.read_text().splitlines()
    edited = json.loads(lines[7])
    edited["candidates"][0]["text"] = "an edited answer"
    lines[7] = json.dumps(edited)
    source.write_text("\n".join(lines) + "\n")
    rows = score(source, output, settings(), loaded=tiny)
    assert read_sidecar(output)["parts"]["reused"] == 23
    fresh = score(source, tmp_path / "fresh.parquet", settings(), loaded=tiny)
    same = lambda r: {k: v for k, v in r.items() if k not in ("sum_logprob", "mean_logprob")}  # noqa: E731
    assert [same(r) for r in rows] == [same(r) for r in fresh]
    # q007 was scored alone on resume, in a chunk of five in the fresh run: the same within rounding
    pairs = [(a, b) for a, b in zip(rows, fresh, strict=True) if b.get("n_tokens")]
    assert max(abs(a["mean_logprob"] - b["mean_logprob"]) for a, b in pairs) < 1e-5
    assert [r["response"] for r in rows if r["id"] == "q007"][0] == "an edited answer"


def test_fail_mode_reports_a_skip_saved_by_an_earlier_run(first_run, tiny, tmp_path):
    source, output = copy_run(first_run, tmp_path)
    lines = source.read_text().splitlines()
    row = json.loads(lines[3])
    row["candidates"] = [c for c in row["candidates"] if c["text"]]  # fail mode stops at an empty one first
    source.write_text("\n".join([*lines[:3], json.dumps(row), *lines[4:]]) + "\n")
    with pytest.raises(InputError, match=r"row 6, field 'candidates\[\d\]': prompt \+ response is \d+ tokens"):
        score(source, output, settings(on_error="fail"), loaded=tiny)


def test_settings_key_covers_model_template_eos_and_dtype(tiny_model_dir, tiny, tmp_path):
    base = settings_key("files:abc", "paper", True, "float32")[0]
    changed = [
        settings_key("files:abd", "paper", True, "float32"), settings_key("files:abc", "chat", True, "float32"),
        settings_key("files:abc", "paper", False, "float32"), settings_key("files:abc", "paper", True, "bfloat16"),
    ]  # fmt: skip
    assert len({base, *(key for key, _ in changed)}) == 5
    copied = shutil.copytree(tiny_model_dir, tmp_path / "copy")  # a copy (new dates, new place): the same model
    assert model_fingerprint(str(copied)) == model_fingerprint(str(tiny_model_dir))
    weights = copied / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-8:] = bytes(b ^ 0xFF for b in data[-8:])  # a retrained checkpoint differs somewhere in its weights
    weights.write_bytes(bytes(data))
    assert model_fingerprint(str(copied)) != model_fingerprint(str(tiny_model_dir))
    tuned = copy.deepcopy(tiny)  # a model changed in memory (fine-tuned in this process) is another model
    assert loaded_fingerprint(tuned) == loaded_fingerprint(tiny)
    with torch.no_grad():
        next(tuned.model.parameters()).mul_(1.01)
    assert loaded_fingerprint(tuned) != loaded_fingerprint(tiny)
