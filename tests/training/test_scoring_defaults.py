"""sft takes the model, template and eos the selection was scored with, unless told; a difference is a warning."""

from __future__ import annotations

from grape.data.tables import write_rows, write_sidecar
from grape.models.embedded import DEFAULT_TARGET
from grape.training.scoring_defaults import same_setting, selection_meta, with_scoring_defaults
from grape.training.settings import DPOSettings, SFTSettings

SCORED = {"score_settings": {"model": "smollm2-135m-instruct", "template": "chat", "eos": False, "dtype": "auto"}}


def test_unset_settings_take_the_scoring_ones():
    settings, warnings = with_scoring_defaults(SFTSettings(lr=0.1), SCORED)
    assert (settings.model, settings.template, settings.eos, settings.lr) == ("smollm2-135m-instruct", "chat", False,
                                                                               0.1)  # fmt: skip
    assert warnings == []


def test_without_a_sidecar_grapes_defaults_apply():
    for meta in ({}, {"score_settings": None}, {"stage": "select"}):
        settings, warnings = with_scoring_defaults(SFTSettings(), meta)
        assert (settings.model, settings.template, settings.eos) == (DEFAULT_TARGET, "paper", True)
        assert warnings == []


def test_without_a_template_in_the_sidecar_a_grape_trained_model_goes_on_in_its_own(tmp_path, capsys):
    """dpo on an sft output trained in raw, with pairs that carry no template: raw, said; the sidecar's wins."""
    (tmp_path / "sft").mkdir()
    (tmp_path / "sft" / "grape-sft.yaml").write_text("template: raw\n")
    model = str(tmp_path / "sft")
    settings, warnings = with_scoring_defaults(DPOSettings(model=model), {}, stage="dpo", data="pairs")
    assert (settings.template, warnings) == ("raw", [])
    said = " ".join(capsys.readouterr().err.split())
    assert f"dpo uses --template raw, the template {model} was trained with" in said
    settings, _ = with_scoring_defaults(DPOSettings(model=model), SCORED, stage="dpo", data="pairs")
    assert settings.template == "chat"  # the text the pairs were scored in
    settings, _ = with_scoring_defaults(DPOSettings(model=model, template="paper"), {}, stage="dpo", data="pairs")
    assert settings.template == "paper"  # given: as given


def test_a_given_setting_that_differs_is_kept_with_a_warning():
    settings, warnings = with_scoring_defaults(SFTSettings(model="gemma-3-270m", eos=False), SCORED)
    assert (settings.model, settings.template, settings.eos) == ("gemma-3-270m", "chat", False)
    assert warnings == ["the selection was scored with model 'smollm2-135m-instruct' but sft uses 'gemma-3-270m': "
                        "GRAPE chose each response for the model that scored it"]  # fmt: skip
    _, warnings = with_scoring_defaults(SFTSettings(template="paper", eos=True), SCORED)
    assert [w.split(":")[0] for w in warnings] == [
        "the selection was scored with template 'chat' but sft uses 'paper'",
        "the selection was scored with eos False but sft uses True",
    ]


def test_two_spellings_of_one_model_directory_are_the_same_model(tmp_path, monkeypatch):
    (tmp_path / "model").mkdir()
    monkeypatch.chdir(tmp_path)
    assert same_setting("model", str(tmp_path / "model")) and same_setting("./model/", "model")
    assert not same_setting("model", str(tmp_path / "other")) and not same_setting("paper", "chat")
    meta = {"score_settings": {"model": str(tmp_path / "model"), "template": "paper", "eos": True}}
    assert with_scoring_defaults(SFTSettings(model="model"), meta)[1] == []


def test_the_sidecar_is_read_from_a_selection_file_only(tmp_path):
    path = write_rows([{"prompt": "p", "completion": "c"}], tmp_path / "selected.jsonl")
    assert selection_meta(path) == {}
    write_sidecar(path, {"stage": "select", **SCORED})
    assert selection_meta(path)["score_settings"] == SCORED["score_settings"]
    assert selection_meta(str(path))["stage"] == "select"
    assert selection_meta([{"prompt": "p", "completion": "c"}]) == {}
