"""A re-run of `grape rl` into the same OUTDIR continues only when the settings that shape the run are the same
(sft's rule): other settings stop it with the keys that differ, before its settings file is written over."""

import json

import pytest
import yaml

from grape.config import write_settings
from grape.errors import GrapeError
from grape.rl.resume import checkpoint_to_resume, clear_checkpoints
from grape.rl.run import rl
from grape.rl.settings import RLSettings, resolved


def _saved_run(out, algo="ppo", **settings):
    """OUTDIR as a run left it: its resolved settings and one complete checkpoint of ``algo``."""
    old = resolved(RLSettings(model="runs/sft", template="paper", eos=True, verifier="number", algo=algo, **settings))
    write_settings(old, out / "grape-rl.yaml")
    if algo == "ppo":
        (out / "checkpoints").mkdir()
        (out / "checkpoints" / "step-000001.pt").write_bytes(b"")
    else:
        (out / "checkpoints" / "checkpoint-2").mkdir(parents=True)
        (out / "checkpoints" / "checkpoint-2" / "trainer_state.json").write_text("{}")
    return old


@pytest.mark.parametrize("algo", ["ppo", "grpo"])
def test_other_settings_stop_a_resume_naming_the_keys_that_differ(tmp_path, algo):
    old = _saved_run(tmp_path, algo)
    other = resolved(RLSettings(**{**vars(old), "model": "runs/sft2", "verifier": "math", "lr": 1e-5}))
    with pytest.raises(GrapeError, match=r"other settings \(model, verifier, lr\); --resume to continue from "
                       r"(step-000001.pt|checkpoint-2) anyway, --no-resume to start afresh"):  # fmt: skip
        checkpoint_to_resume(tmp_path, other)
    with pytest.raises(GrapeError, match=r"other settings \(kl_coef\)"):
        checkpoint_to_resume(tmp_path, RLSettings(**{**vars(old), "kl_coef": 0.01}))


def test_how_long_it_runs_how_often_it_saves_and_where_may_change(tmp_path):
    old = _saved_run(tmp_path)
    longer = RLSettings(**{**vars(old), "max_steps": 50, "epochs": 3.0, "save_steps": 5, "device": "cpu"})
    assert checkpoint_to_resume(tmp_path, longer) == tmp_path / "checkpoints" / "step-000001.pt"


def test_resume_true_continues_anyway_and_false_starts_afresh(tmp_path):
    old = _saved_run(tmp_path)
    other = {**vars(old), "kl_coef": 0.01}
    assert checkpoint_to_resume(tmp_path, RLSettings(**{**other, "resume": True})).name == "step-000001.pt"
    afresh = RLSettings(**{**other, "resume": False})
    assert checkpoint_to_resume(tmp_path, afresh) is None
    assert (tmp_path / "checkpoints").is_dir()  # deciding deletes nothing: the run may still be refused
    clear_checkpoints(tmp_path, afresh)
    assert not (tmp_path / "checkpoints").exists()


def test_checkpoints_without_their_settings_file_stop_a_resume(tmp_path):
    old = _saved_run(tmp_path)
    (tmp_path / "grape-rl.yaml").unlink()
    with pytest.raises(GrapeError, match="has checkpoints but no grape-rl.yaml"):
        checkpoint_to_resume(tmp_path, old)


@pytest.fixture
def questions(tmp_path):
    path = tmp_path / "questions.jsonl"
    path.write_text("".join(json.dumps({"prompt": q, "answer": "4"}) + "\n" for q in ("2 + 2?", "1 + 3?", "0 + 4?")))
    return path


def test_a_ppo_rerun_with_another_lr_stops_and_leaves_the_saved_settings(tiny_llama_dir, questions, tmp_path):
    out = tmp_path / "run"
    first = dict(model=str(tiny_llama_dir), verifier="number", batch_size=2, max_new_tokens=2, device="cpu", lr=1e-3,
                 max_steps=1, save_steps=1)  # fmt: skip
    rl(questions, out, RLSettings(**first))
    saved = (out / "grape-rl.yaml").read_text()
    with pytest.raises(GrapeError, match=r"other settings \(kl_coef, lr\)"):
        rl(questions, out, RLSettings(**{**first, "lr": 1e-4, "kl_coef": 0.01}))
    assert (out / "grape-rl.yaml").read_text() == saved  # still says how the checkpoints were made
    resumed = rl(questions, out, RLSettings(**{**first, "max_steps": 2}))  # running longer may change
    assert resumed.metrics["resumed_from"].endswith("step-000001.pt")
    assert [h["step"] for h in resumed.history] == [1, 2]
    afresh = rl(questions, out, RLSettings(**{**first, "lr": 1e-4, "resume": False}))
    assert afresh.metrics["resumed_from"] is None and [h["step"] for h in afresh.history] == [1]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000001.pt"]  # the old run's are gone
    assert yaml.safe_load((out / "grape-rl.yaml").read_text())["lr"] == 1e-4
