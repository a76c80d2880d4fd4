"""`grape run` on named steps: two steps of one type, references, a `repeat:` block, dry runs, overrides,
cached outputs checked before use, and folders grape did not make left alone. A tiny model throughout."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from grape.cli import main
from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError
from grape.pipeline import load_pipeline, preview_pipeline, run_pipeline
from grape.pipeline.cache import MARKER

QUESTIONS = [("What is 2 + 3?", 5), ("What is 4 times 5?", 20), ("What is 9 minus 4?", 5)]
RUNS = ["verify", "fit", "fit_raw", "best", "warmup", "rescore.1", "reselect.1", "tune.1", "rescore.2", "reselect.2",
        "tune.2"]  # fmt: skip


def _write(folder: Path, model_dir: Path, repeat: int = 2) -> Path:
    rows = [{"id": f"q{i}", "prompt": q, "answer": str(a),
             "candidates": [{"text": f"The answer is {a}.", "source": "terse"},
                            {"text": f"Step by step, we get {a}.", "source": "wordy"},
                            {"text": f"The answer is {a + 1}.", "source": "wrong"}]}
            for i, (q, a) in enumerate(QUESTIONS)]  # fmt: skip
    write_rows(rows, folder / "candidates.jsonl")
    text = f"""
workdir: run
defaults: {{model: {model_dir}, template: paper, device: cpu, dtype: float32,
            max_steps: 1, batch_size: 4, lr: 1.0e-3, precision: fp32, save_steps: 1}}
steps:
  - {{name: verify, type: verify, input: candidates.jsonl, verifier: math}}
  - {{name: fit, type: score}}
  - {{name: fit_raw, type: score, input: "${{steps.verify.output}}", template: raw}}
  - {{name: best, type: select, input: "${{steps.fit.output}}", require_correct: true}}
  - {{name: warmup, type: sft}}
  - repeat: {repeat}
    steps:
      - {{name: rescore, type: score, input: "${{steps.verify.output}}", model: "${{steps.tune.output}}"}}
      - {{name: reselect, type: select, require_correct: true, seed: "${{iteration}}"}}
      - {{name: tune, type: sft, model: "${{steps.tune.output}}", seed: "${{iteration}}"}}
"""
    path = folder / "pipeline.yaml"
    path.write_text(text)
    return path


def _statuses(outcomes) -> dict[str, str]:
    return {o.step: o.status for o in outcomes}


def _scores(folder: Path, step: str) -> list[float]:
    return [r["mean_logprob"] for r in read_table_rows(folder / "run" / step / "scores.parquet")]


@pytest.fixture(scope="module")
def ran(tiny_model_dir, tmp_path_factory):
    folder = tmp_path_factory.mktemp("steps")
    outcomes = run_pipeline(_write(folder, tiny_model_dir))
    return folder, outcomes


def _copy(ran, tmp_path: Path) -> Path:
    return shutil.copytree(ran[0], tmp_path / "copy")


def test_two_steps_of_one_type_and_a_repeat_block_run_end_to_end(ran):
    folder, outcomes = ran
    assert [(o.step, o.status) for o in outcomes] == [(name, "ran") for name in RUNS]
    assert [o.type for o in outcomes][:5] == ["verify", "score", "score", "select", "sft"]
    run = folder / "run"
    assert (run / "tune.2" / "model" / "config.json").is_file() and (run / "rescore.1" / MARKER).is_file()
    # Two score steps with other templates score other text; each iteration scores with the model it was given.
    assert _scores(folder, "fit") != _scores(folder, "fit_raw")
    assert read_sidecar(run / "fit_raw" / "scores.parquet")["settings"]["template"] == "raw"
    model_of = {s: read_sidecar(run / s / "scores.parquet")["settings"]["model"] for s in ("rescore.1", "rescore.2")}
    assert model_of == {"rescore.1": str(run / "warmup" / "model"), "rescore.2": str(run / "tune.1" / "model")}
    assert _scores(folder, "rescore.1") != _scores(folder, "fit") != _scores(folder, "rescore.2")
    resolved = {s["name"]: s for s in yaml.safe_load((run / "pipeline.resolved.yaml").read_text())["steps"]}
    assert resolved["tune.1"]["inputs"] == {"input": f"output of reselect.1 ({run / 'reselect.1' / 'selected.jsonl'})",
                                            "model": f"output of warmup ({run / 'warmup' / 'model'})"}  # fmt: skip
    assert resolved["tune.2"]["inputs"]["model"].startswith("output of tune.1")
    assert resolved["best"]["inputs"]["input"].startswith("output of fit ")  # not fit_raw, the nearest score
    assert [resolved[f"tune.{i}"]["settings"]["seed"] for i in (1, 2)] == [1, 2]  # ${iteration}


def test_a_second_run_is_all_cached_and_another_iteration_runs_only_itself(ran, tiny_model_dir, tmp_path):
    folder = _copy(ran, tmp_path)  # a copied workdir stays cached: keys follow contents, not places
    assert set(_statuses(run_pipeline(folder / "pipeline.yaml")).values()) == {"cached"}
    outcomes = _statuses(run_pipeline(_write(folder, tiny_model_dir, repeat=3)))
    assert outcomes == {**dict.fromkeys(RUNS, "cached"), "rescore.3": "ran", "reselect.3": "ran", "tune.3": "ran"}
    assert read_sidecar(folder / "run" / "rescore.3" / "scores.parquet")["settings"]["model"] == str(
        folder / "run" / "tune.2" / "model"
    )


def test_dry_run_says_what_is_cached_and_why_the_rest_would_run(ran, tmp_path, capsys):
    folder = _copy(ran, tmp_path)
    path = folder / "pipeline.yaml"
    assert {p.step: p.status for p in preview_pipeline(path)} == dict.fromkeys(RUNS, "cached")
    previews = {p.step: p for p in preview_pipeline(path, overrides=["steps.tune.max_steps=2"])}
    assert [previews[s].status for s in RUNS] == ["cached"] * 7 + ["runs", "depends", "depends", "depends"]
    assert previews["tune.1"].reason == "settings changed: max_steps"
    assert previews["rescore.2"].reason == "runs if the output of tune.1 changes"
    assert previews["tune.1"].inputs == ["input ← reselect.1", "model ← warmup"]
    assert previews["verify"].inputs == [f"input: {folder / 'candidates.jsonl'}"]
    rows = read_table_rows(folder / "candidates.jsonl")
    rows[0]["candidates"][0]["text"] = "The answer is five."
    write_rows(rows, folder / "candidates.jsonl")
    previews = {p.step: p for p in preview_pipeline(path)}
    assert (previews["verify"].status, previews["verify"].reason) == ("runs", "input changed: input")
    assert all(previews[s].status == "depends" for s in RUNS[1:])
    assert {p.step: p.reason for p in preview_pipeline(path, force=["rescore"])}["rescore.2"] == "forced"
    shutil.rmtree(folder / "run")
    assert {(p.status, p.reason) for p in preview_pipeline(path)} == {("runs", "new")}
    assert not (folder / "run").exists()  # a dry run writes nothing
    assert main(["run", "--dry-run", str(path), "tune.max_steps=3"]) == 0
    shown = capsys.readouterr().err
    assert "dry run" in shown and "rescore.2" in shown and "new" in shown


def test_overrides_set_one_setting_and_name_what_is_wrong(ran, tmp_path):
    folder = _copy(ran, tmp_path)
    path = folder / "pipeline.yaml"
    overrides = ["steps.tune.max_steps=5", "best.strategy=lowest", "defaults.seed=3", "fit.engine.batch_tokens=512"]
    steps = {p.name: p for p in load_pipeline(path, overrides).steps}
    assert [steps[f"tune.{i}"].settings.max_steps for i in (1, 2)] == [5, 5] and steps["warmup"].settings.max_steps == 1
    assert steps["best"].settings.strategy == "lowest" and steps["reselect.1"].settings.strategy == "grape"
    assert steps["warmup"].settings.seed == 3 and steps["tune.2"].settings.seed == 2  # the step's own value wins
    assert steps["fit"].settings.engine.batch_tokens == 512
    cases = [
        ("steps.tuen.max_steps=5", "override 'steps.tuen.max_steps=5': no step named 'tuen'; steps are verify, fit"),
        ("tune.max_stesp=5", "override 'tune.max_stesp=5': a sft step has no setting 'max_stesp'"),
        ("fit.engine.batch_tokns=5", "a score step, in engine, has no setting 'batch_tokns'"),
        ("tune.max_steps", "expected steps.STEP.SETTING=VALUE"),
        ("tune.max_steps=[1", "the value is not valid YAML"),
        ("tune.max_steps=five", "steps.tune: max_steps: expected int, got 'five'"),
        ("best.strategy=best", "steps.best: strategy: unknown strategy 'best'"),
    ]
    for override, message in cases:
        with pytest.raises(GrapeError, match=message) as caught:
            load_pipeline(path, [override])
        assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


@pytest.mark.parametrize("damage", ["truncate", "same size"])
def test_a_damaged_cached_output_is_rerun_not_passed_on(ran, tmp_path, damage):
    folder = _copy(ran, tmp_path)
    output = folder / "run" / "best" / "selected.jsonl"
    good = output.read_bytes()
    output.write_bytes(b"" if damage == "truncate" else good.replace(b"wordy", b"WORDY").replace(b"terse", b"TERSE"))
    assert output.read_bytes() != good
    expected = f"(0 bytes, was {len(good)})" if damage == "truncate" else "(other content)"
    reason = {p.step: p.reason for p in preview_pipeline(folder / "pipeline.yaml")}["best"]
    assert reason == f"its output changed since it was written {expected}"
    outcomes = _statuses(run_pipeline(folder / "pipeline.yaml"))
    assert outcomes["best"] == "ran" and output.read_bytes() == good
    assert outcomes["warmup"] == "cached"  # the same selection again: what it trained on did not change


def test_a_folder_grape_did_not_make_is_never_reused_or_deleted(tiny_model_dir, tmp_path):
    _write(tmp_path, tiny_model_dir)
    spec = yaml.safe_load((tmp_path / "pipeline.yaml").read_text())
    spec["workdir"] = "."
    spec["defaults"] = {k: spec["defaults"][k] for k in ("model", "template", "device", "dtype")}
    spec["steps"] = spec["steps"][:4]
    spec["steps"][3]["name"] = "select"
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec))
    (tmp_path / "select").mkdir()
    (tmp_path / "select" / "notes.txt").write_text("mine")
    with pytest.raises(GrapeError) as caught:
        run_pipeline(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: steps.select: {tmp_path / 'select'} exists and was not made by grape")
    assert "\n" not in message
    assert (tmp_path / "select" / "notes.txt").read_text() == "mine"
    assert not (tmp_path / "verify").exists()  # refused before the first step ran
    with pytest.raises(GrapeError, match="not made by grape"):
        preview_pipeline(path)
    (tmp_path / "select" / "notes.txt").unlink()  # an empty folder holds nothing to lose: taken
    assert _statuses(run_pipeline(path))["select"] == "ran"
    assert (tmp_path / "select" / MARKER).is_file()
