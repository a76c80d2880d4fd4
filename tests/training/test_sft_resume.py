"""A re-run into the same OUTDIR continues the old run only when it was made with the same settings; otherwise
it stops with the keys that differ, unless --resume (continue anyway) or --no-resume (start afresh)."""

from __future__ import annotations

import shutil

import pytest
import yaml
from sft_rows import FAST, ROWS, fresh

from grape.cli import main
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.training.resume import changed_settings
from grape.training.settings import SFTSettings
from grape.training.sft import sft


@pytest.fixture(scope="module")
def two_steps(base, tmp_path_factory):
    """A finished run of two steps, a checkpoint after each."""
    out = tmp_path_factory.mktemp("resume") / "model"
    sft(ROWS, out, loaded=fresh(base), **FAST, max_steps=2, save_steps=1)
    return out


def _copy(two_steps, tmp_path):
    return shutil.copytree(two_steps, tmp_path / "model")


def test_the_same_settings_continue_and_may_run_longer(two_steps, base, tmp_path):
    out = _copy(two_steps, tmp_path)
    result = sft(ROWS, out, loaded=fresh(base), **{**FAST, "logging_steps": 2}, max_steps=3, save_steps=1)
    assert result.metrics["resumed_from"] == str(out / "checkpoints" / "checkpoint-2")
    assert result.metrics["steps"] == 3


def test_other_settings_stop_with_the_keys_that_differ(two_steps, base, tmp_path):
    out = _copy(two_steps, tmp_path)
    before = (out / "grape-sft.yaml").read_text()
    message = r"from a run with other settings \(lr, seed\); --resume to continue from checkpoint-2 anyway, --no-resume"
    with pytest.raises(GrapeError, match=message):
        sft(ROWS, out, loaded=fresh(base), **{**FAST, "lr": 0.5, "seed": 3}, max_steps=2, save_steps=1)
    assert (out / "grape-sft.yaml").read_text() == before  # nothing written


def test_resume_continues_anyway_and_no_resume_starts_afresh(two_steps, base, tmp_path):
    out = _copy(two_steps, tmp_path)
    resumed = sft(ROWS, out, loaded=fresh(base), **{**FAST, "lr": 0.5}, max_steps=3, save_steps=1, resume=True)
    assert resumed.metrics["resumed_from"].endswith("checkpoint-2") and resumed.metrics["steps"] == 3
    assert yaml.safe_load((out / "grape-sft.yaml").read_text())["lr"] == 0.5  # now the settings of these checkpoints
    afresh = sft(ROWS, out, loaded=fresh(base), **{**FAST, "lr": 0.2}, max_steps=1, save_steps=1, resume=False)
    assert afresh.metrics["resumed_from"] is None and afresh.metrics["steps"] == 1
    assert [p.name for p in (out / "checkpoints").glob("checkpoint-*")] == ["checkpoint-1"]  # the old ones are gone


def test_checkpoints_without_saved_settings_are_not_resumed_silently(two_steps, base, tmp_path):
    out = _copy(two_steps, tmp_path)
    (out / "grape-sft.yaml").unlink()
    with pytest.raises(GrapeError, match="has checkpoints but no grape-sft.yaml"):
        sft(ROWS, out, loaded=fresh(base), **FAST, max_steps=2)


def test_the_command_says_so_in_one_line(two_steps, tiny_model_dir, tmp_path, capsys):
    out = _copy(two_steps, tmp_path)
    write_rows(ROWS, tmp_path / "selected.jsonl")
    argv = ["sft", str(tmp_path / "selected.jsonl"), "-o", str(out), "--model", str(tiny_model_dir),
            "--precision", "fp32", "--max_steps", "2", "--learning_rate", "0.3"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "other settings (lr, lr_scheduler, batch_size)" in " ".join(err.split())  # the same model
    assert "Traceback" not in err


def test_changed_settings_ignore_how_long_and_how_it_logs():
    old = {"lr": 0.1, "max_steps": 10, "logging_steps": 1, "report_to": "wandb", "save_steps": 5}
    new = SFTSettings(lr=0.1, max_steps=20, logging_steps=7, report_to="none", save_steps=9, resume=True)
    assert changed_settings(old, new) == []
    assert changed_settings(old, SFTSettings(lr=0.1, lora_r=8, trainer={"max_grad_norm": 0.5})) == ["lora_r", "trainer"]
    assert changed_settings({}, SFTSettings()) == []  # a key the old file lacks had its default
