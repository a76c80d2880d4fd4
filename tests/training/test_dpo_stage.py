"""`grape dpo` as a stage: the command line with --config and the pairs' sidecar, resuming (checkpoints and the
reference pass), LoRA with the adapter-disabled reference, one-line errors, and the dpo step of `grape run`.
A tiny Llama with SmolLM2's tokenizer keeps the steps short (conftest.smol_base)."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from dpo_pairs import FAST, PAIRS
from sft_rows import fresh

from grape.cli import build_parser, main
from grape.data.tables import read_sidecar, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.pipeline import load_pipeline
from grape.training.dpo import dpo
from grape.training.dpo_cli import settings_from_args
from grape.training.resume import changed_settings
from grape.training.settings import DPOSettings


def _pairs_file(folder, model: str, template: str = "paper"):
    """The pairs as `grape pairs` leaves them: rows and a sidecar that says how they were scored."""
    path = write_rows(PAIRS, folder / "pairs.jsonl")
    write_sidecar(path, {"stage": "pairs", "scores": "scores.parquet", "summary": {"pairs": 4, "instructions": 5},
                         "settings": {"chosen": "grape", "chosen_from": "all", "rejected": "lowest",
                                      "rejected_from": "rest", "min_margin": None},
                         "score_settings": {"model": model, "template": template, "eos": True}})  # fmt: skip
    return path


def test_flags_win_over_the_config_file_which_wins_over_defaults(tmp_path):
    config = tmp_path / "dpo.yaml"
    config.write_text("loss: simpo\nbeta: 2.5\nmax_steps: 7\nlora_r: 8\ntrainer:\n  max_grad_norm: 0.5\n")
    args = build_parser().parse_args(["dpo", "p.jsonl", "-o", "out", "--config", str(config), "--beta", "1.5",
                                      "--learning_rate", "0.001", "--trainer-arg", "warmup_steps=2"])  # fmt: skip
    settings = settings_from_args(args)
    assert (settings.beta, settings.lr) == (1.5, 0.001)  # flags (TRL's names are aliases)
    assert (settings.loss, settings.max_steps, settings.lora_r) == ("simpo", 7, 8)  # the file
    assert settings.trainer == {"max_grad_norm": 0.5, "warmup_steps": 2}
    assert (settings.gamma, settings.template, settings.ref) == (0.5, None, None)  # defaults
    use_peft = settings_from_args(build_parser().parse_args(["dpo", "p.jsonl", "-o", "o", "--use_peft"]))
    assert use_peft.lora_r == 16


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"loss": "ipo"}, "unknown loss 'ipo': use dpo or simpo"),
        ({"loss": "simpo", "ref": "x"}, "simpo has no reference model"),
        ({"beta": 0.0}, "beta must be positive"),
        ({"save": "adapter"}, "save adapter writes a PEFT adapter"),
        ({"trainer": {"beta": 0.3}}, "trainer: beta is set by grape's beta"),
        ({"trainer": {"precompute_ref_log_probs": False}}, "set by grape's the reference pass"),
        ({"loss": "simpo", "trainer": {"rpo_alpha": 1.0}}, "rpo_alpha is not a field of trl.CPOConfig"),
    ],
)
def test_settings_a_run_cannot_use_are_one_line_errors_before_any_work(overrides, message):
    with pytest.raises(GrapeError, match=message):
        dpo("no-such-file.jsonl", None, **overrides)


def test_the_command_trains_with_defaults_from_the_pairs_sidecar_and_writes_its_outputs(smol_base, tmp_path):
    model = str(smol_base.identity["spec"])
    pairs = _pairs_file(tmp_path, model)
    config = tmp_path / "dpo.yaml"
    config.write_text(yaml.safe_dump({"loss": "simpo", **FAST, "max_steps": 1}))
    out = tmp_path / "model"
    assert main(["dpo", str(pairs), "-o", str(out), "--config", str(config), "--beta", "1.5"]) == 0
    saved = yaml.safe_load((out / "grape-dpo.yaml").read_text())
    assert (saved["model"], saved["template"], saved["eos"]) == (model, "paper", True)  # from the sidecar
    assert (saved["loss"], saved["beta"], saved["max_steps"]) == ("simpo", 1.5, 1)  # file, then flag
    assert (out / "model.safetensors").is_file() and (out / "tokenizer.json").is_file()
    assert not (out / "reference.parquet").exists()  # simpo has no reference
    card = (out / "README.md").read_text()
    assert "SimPO" in card and "Made by `grape pairs` from `scores.parquet`: chosen `grape`" in card
    assert f"grape dpo {pairs} -o {out} --config {out / 'grape-dpo.yaml'}" in card  # reruns from the resolved file
    assert json.loads((out / "grape-dpo.json").read_text())["metrics"]["steps"] == 1


def test_a_bad_pairs_file_is_one_line_naming_file_row_and_field(tmp_path, capsys):
    path = write_rows([PAIRS[0], {"prompt": "Q?", "chosen": "A."}], tmp_path / "pairs.jsonl")
    assert main(["dpo", str(path), "-o", str(tmp_path / "m"), "--model", "no-such-model-dir"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: {path}, row 2, field 'rejected': missing: a pair needs `prompt`, `chosen` and `rejected`"


def test_lora_against_the_model_before_training_starts_at_margin_zero(smol_base, tmp_path, heap_at_steps):
    """The reference pass (grape's engine, on the base model) equals TRL's policy log-probs with a fresh adapter
    (LoRA's B starts at 0): every reward starts at 0, and the first loss is log 2."""
    out = tmp_path / "model"
    result = dpo(PAIRS, out, loaded=fresh(smol_base), **FAST, max_steps=1, lora_r=4, save="both")
    first = result.metrics["loss_curve"][0][1]
    assert first == pytest.approx(0.6931472, abs=1e-5)
    seen, switchable = heap_at_steps
    assert len(seen) == 1 and all(kept == switchable for kept in seen)  # on a CPU every step on a kept heap
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "model.safetensors").is_file()
    assert read_sidecar(out / "reference.parquet")["counts"]["scored"] == 2 * len(PAIRS)


@pytest.fixture(scope="module")
def two_steps(smol_base, tmp_path_factory):
    """A finished DPO run of two steps, a checkpoint after each."""
    out = tmp_path_factory.mktemp("dpo-resume") / "model"
    dpo(PAIRS, out, loaded=fresh(smol_base), **FAST, max_steps=2, save_steps=1)
    return out


def test_the_same_settings_resume_and_reuse_the_reference_pass(two_steps, smol_base, tmp_path):
    out = shutil.copytree(two_steps, tmp_path / "model")
    result = dpo(PAIRS, out, loaded=fresh(smol_base), **FAST, max_steps=3, save_steps=1)
    assert result.metrics["resumed_from"] == str(out / "checkpoints" / "checkpoint-2")
    assert result.metrics["steps"] == 3
    assert read_sidecar(out / "reference.parquet")["parts"]["reused"] == len(PAIRS)  # scored once, read back


def test_a_finished_run_is_reported_finished_and_left_as_it_is(smol_base, tmp_path, capsys):
    mid_epoch = {**FAST, "batch_size": 1, "max_steps": 2, "save_steps": 1}  # transformers resumes it with a step more
    out = tmp_path / "model"
    dpo(PAIRS, out, loaded=fresh(smol_base), **mid_epoch)
    reread = "reference.parquet.meta.json"  # the reference pass reads its scores back, and its sidecar says so
    files = lambda: {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != reread}  # noqa: E731
    before = files()
    result = dpo(PAIRS, out, loaded=fresh(smol_base), **mid_epoch)
    assert result.metrics["steps"] == 2  # not one step more
    assert result.metrics == json.loads(before["grape-dpo.json"])["metrics"] and files() == before
    assert sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert "already finished (checkpoint-2 reached the run's end (step 2))" in " ".join(capsys.readouterr().err.split())


def test_other_settings_stop_with_the_keys_that_differ(two_steps, smol_base, tmp_path):
    out = shutil.copytree(two_steps, tmp_path / "model")
    with pytest.raises(GrapeError, match=r"other settings \(beta\); --resume to continue from checkpoint-2"):
        dpo(PAIRS, out, loaded=fresh(smol_base), **FAST, max_steps=3, beta=0.3)
    assert changed_settings({"max_steps": 2, "logging_steps": 1}, DPOSettings(max_steps=9)) == []


def test_a_dpo_step_takes_the_nearest_pairs_output_or_needs_an_input(tmp_path):
    spec = {"workdir": "run", "steps": [
        {"name": "fit", "type": "score", "input": "candidates.jsonl"},
        {"name": "prefs", "type": "pairs"},
        {"name": "tune", "type": "dpo", "loss": "simpo", "max_steps": 3},
        {"name": "check", "type": "eval", "data": "test.jsonl"},
    ]}  # fmt: skip
    write_rows(PAIRS, tmp_path / "candidates.jsonl")  # only read when run: planning checks they exist
    write_rows(PAIRS, tmp_path / "test.jsonl")
    path = tmp_path / "pipeline.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    plan = {p.name: p for p in load_pipeline(path).steps}
    assert plan["tune"].ref_of("input") == "prefs" and plan["tune"].settings.loss == "simpo"
    assert plan["check"].ref_of("model") == "tune"  # eval evaluates the preference-trained model
    spec["steps"] = [{"name": "tune", "type": "dpo"}]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(GrapeError, match="no `input:` given, or put a pairs step before it"):
        load_pipeline(path)
    spec["steps"] = [{"name": "tune", "type": "dpo", "input": "p.jsonl", "loss": "kto"}]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(GrapeError, match="unknown loss 'kto'"):
        load_pipeline(path)
