"""A re-run into the same OUTDIR continues the old run only when it was made with the same settings; otherwise
it stops with the keys that differ, unless --resume (continue anyway) or --no-resume (start afresh). A re-run of a
finished run trains nothing: its outputs stay, or are written from its last checkpoint when they are missing."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
import yaml
from safetensors.torch import load_file
from sft_rows import FAST, ROWS, fresh

from grape.cli import main
from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.training.resume import changed_settings, mean_logged_loss
from grape.training.settings import SFTSettings
from grape.training.sft import sft

# Two steps of a batch of one end inside the first epoch, where transformers resumes with one step more.
MID_EPOCH = {**FAST, "batch_size": 1, "max_steps": 2, "save_steps": 1}


@pytest.fixture(scope="module")
def two_steps(base, tmp_path_factory):
    """A finished run of two steps, a checkpoint after each."""
    out = tmp_path_factory.mktemp("resume") / "model"
    sft(ROWS, out, loaded=fresh(base), **FAST, max_steps=2, save_steps=1)
    return out


@pytest.fixture(scope="module")
def mid_epoch(base, tmp_path_factory):
    """A finished run of two steps that ends inside its first epoch."""
    out = tmp_path_factory.mktemp("resume-mid-epoch") / "model"
    sft(ROWS, out, loaded=fresh(base), **MID_EPOCH)
    return out


@pytest.fixture(scope="module")
def two_epochs(base, tmp_path_factory):
    """A finished run of two epochs of one step each (four rows, a batch of four)."""
    out = tmp_path_factory.mktemp("resume-epochs") / "model"
    sft(ROWS, out, loaded=fresh(base), **FAST, epochs=2, save_steps=1)
    return out


def _copy(two_steps, tmp_path):
    return shutil.copytree(two_steps, tmp_path / "model")


def _files(out) -> dict[str, bytes]:
    """The files of OUTDIR but grape-sft.yaml (its first line names the OUTDIR, which the copy moved)."""
    return {p.name: p.read_bytes() for p in out.iterdir() if p.is_file() and p.name != "grape-sft.yaml"}


def _checkpoints(out) -> list[str]:
    return sorted(p.name for p in (out / "checkpoints").glob("checkpoint-*"))


@pytest.mark.parametrize(
    "run, settings", [("mid_epoch", MID_EPOCH), ("two_epochs", {**FAST, "epochs": 2, "save_steps": 1})]
)
def test_a_finished_run_is_reported_finished_and_left_as_it_is(run, settings, base, tmp_path, capsys, request):
    out = _copy(request.getfixturevalue(run), tmp_path)
    before = _files(out)
    result = sft(ROWS, out, loaded=fresh(base), **settings)
    assert result.metrics["steps"] == 2  # not one step more
    assert result.metrics == json.loads(before["grape-sft.json"])["metrics"]
    assert _files(out) == before and _checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    saved = load_file(out / "model.safetensors")  # the model returned is the one saved, not the untrained one
    assert all(torch.equal(saved[k], v) for k, v in result.model.state_dict().items() if k in saved)
    err = " ".join(capsys.readouterr().err.split())
    assert "model: already finished (checkpoint-2 reached the run's end (step 2)); its model and grape-sft.json" in err


def test_a_run_killed_after_its_last_checkpoint_writes_its_model_from_it_without_training(mid_epoch, base, tmp_path,
                                                                                         capsys):  # fmt: skip
    out = _copy(mid_epoch, tmp_path)
    saved = load_file(out / "model.safetensors")
    for name in ("model.safetensors", "config.json", "README.md", "grape-sft.json"):  # killed before the save
        (out / name).unlink()
    result = sft(ROWS, out, loaded=fresh(base), **MID_EPOCH)
    assert result.metrics["steps"] == 2 and result.metrics["resumed_from"].endswith("checkpoint-2")
    assert _checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    written = load_file(out / "model.safetensors")
    assert saved.keys() == written.keys() and all(torch.equal(saved[k], written[k]) for k in saved)
    done = json.loads((out / "grape-sft.json").read_text())["metrics"]
    assert done["train_loss"] == pytest.approx(sum(loss for _, loss in done["loss_curve"]) / 2)
    assert "but its model was not saved: writing it from that checkpoint" in " ".join(capsys.readouterr().err.split())


def test_a_finished_run_asked_for_another_output_writes_it_from_its_checkpoint(base, tmp_path):
    out = tmp_path / "model"
    sft(ROWS, out, loaded=fresh(base), **MID_EPOCH, lora_r=4, save="adapter")
    adapter = (out / "adapter" / "adapter_model.safetensors").read_bytes()
    result = sft(ROWS, out, loaded=fresh(base), **MID_EPOCH, lora_r=4, save="both")
    assert result.metrics["steps"] == 2 and _checkpoints(out) == ["checkpoint-1", "checkpoint-2"]
    assert (out / "adapter" / "adapter_model.safetensors").read_bytes() == adapter
    merged, untrained = load_file(out / "model.safetensors"), base.model.state_dict()
    assert any(not torch.equal(merged[k], untrained[k]) for k in merged)  # the checkpoint's adapter, merged in


def test_the_mean_logged_loss_weighs_each_log_by_the_steps_it_covers():
    history = [{"loss": 2.0, "step": 1}, {"loss": 1.0, "step": 4}, {"train_runtime": 3.0, "step": 4}]
    assert mean_logged_loss(history) == pytest.approx((2.0 + 3 * 1.0) / 4)
    assert mean_logged_loss([{"train_runtime": 1.0}]) is None


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
    card = (out / "README.md").read_text()  # transformers' mean loss and time are of the steps after the resume
    assert re.search(r"mean training loss: \S+ \(of the steps run after the resume\)", card)
    afresh = sft(ROWS, out, loaded=fresh(base), **{**FAST, "lr": 0.2}, max_steps=1, save_steps=1, resume=False)
    assert afresh.metrics["resumed_from"] is None and afresh.metrics["steps"] == 1
    assert "after the resume" not in (out / "README.md").read_text()
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
