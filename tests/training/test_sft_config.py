"""TRL's SFTConfig from grape's settings: any other SFTConfig field passes through `trainer`, checked by name and
applied last; the training progress bar stays on although grape keeps transformers' log level at ERROR."""

from __future__ import annotations

import pytest
import torch
from trl import SFTConfig

from grape.errors import GrapeError
from grape.models.load import quiet_transformers
from grape.training.settings import SFTSettings, check
from grape.training.sft_config import OWNED, parse_trainer_arg, sft_config, sft_config_fields

CPU = torch.device("cpu")
RESOLVED = dict(model="m", template="paper", eos=True, lr=1e-3, precision="fp32", max_length=64)


def _config(tmp_path, **trainer) -> SFTConfig:
    return sft_config(SFTSettings(**RESOLVED, trainer=trainer), CPU, tmp_path, save=True)


def test_grape_settings_set_sftconfig_and_trainer_fields_are_applied_last(tmp_path):
    args = _config(tmp_path, max_grad_norm=0.25, logging_first_step=False, neftune_noise_alpha=5.0)
    assert (args.learning_rate, args.per_device_train_batch_size, args.output_dir) == (1e-3, 8, str(tmp_path))
    assert args.max_grad_norm == 0.25 and args.neftune_noise_alpha == 5.0
    assert args.logging_first_step is False  # grape's own choice (True) is overridden: applied last
    assert _config(tmp_path).logging_first_step is True and _config(tmp_path).max_grad_norm == 1.0


def test_an_unknown_or_grape_owned_key_is_a_one_line_error():
    with pytest.raises(GrapeError, match=r"^trainer: max_grad_nrom is not a field of trl.SFTConfig \(did you mean "
                                         r"max_grad_norm"):  # fmt: skip
        check(SFTSettings(trainer={"max_grad_nrom": 0.5}))
    with pytest.raises(GrapeError, match=r"^trainer: learning_rate is set by grape's lr \(--learning_rate\); set it"):
        check(SFTSettings(trainer={"learning_rate": 0.5}))
    with pytest.raises(GrapeError, match="trainer: output_dir is set by grape's -o/--output_dir"):
        check(SFTSettings(trainer={"output_dir": "elsewhere"}))
    assert set(OWNED) <= sft_config_fields()  # every owned name is a real field (a rename in TRL shows here)


def test_a_value_sftconfig_refuses_is_a_one_line_error(tmp_path):
    with pytest.raises(GrapeError, match="^trainer: SFTConfig refused the settings: .*not_an_optimizer"):
        _config(tmp_path, optim="not_an_optimizer")


def test_trainer_arg_values_are_read_as_yaml():
    assert parse_trainer_arg("max_grad_norm=0.5") == ("max_grad_norm", 0.5)
    assert parse_trainer_arg("group_by_length=true") == ("group_by_length", True)
    assert parse_trainer_arg("optim_target_modules=[q_proj, v_proj]") == ("optim_target_modules", ["q_proj", "v_proj"])
    assert parse_trainer_arg("lr_scheduler_kwargs={min_lr: 0.1}") == ("lr_scheduler_kwargs", {"min_lr": 0.1})
    assert parse_trainer_arg("run_name=a: b: c") == ("run_name", "a: b: c")  # not YAML: kept as text
    assert parse_trainer_arg(" hub_model_id = me/model ") == ("hub_model_id", "me/model")


def test_the_progress_bar_is_on_although_transformers_logs_only_errors(tmp_path):
    quiet_transformers()  # what every model load does
    # The cause: transformers turns its bar off whenever its log level is above WARNING ...
    assert SFTConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none").disable_tqdm is True
    # ... so grape asks for it; the user can still turn it off.
    assert _config(tmp_path).disable_tqdm is False
    assert _config(tmp_path, disable_tqdm=True).disable_tqdm is True
