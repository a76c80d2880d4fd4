"""`grape rl` without --template prompts in the template grape trained --model with (else the questions' sidecar's,
else paper) and says which; without --model it trains the model the questions' sidecar names, as sft does."""

import json
import shutil

import yaml

from grape.data.tables import write_rows, write_sidecar
from grape.models.embedded import DEFAULT_TARGET
from grape.rl.model_defaults import with_model_defaults
from grape.rl.run import rl
from grape.rl.settings import RLSettings


def _questions(tmp_path, score_settings=None):
    data = write_rows([{"prompt": "What is 2 + 2?", "answer": "4"}], tmp_path / "questions.jsonl")
    if score_settings is not None:  # as `grape tools prepare --model M` writes it
        write_sidecar(data, {"stage": "tools-prepare", "score_settings": score_settings})
    return data


def _trained_model(folder, template):
    folder.mkdir()
    (folder / "grape-sft.yaml").write_text(yaml.safe_dump({"model": "smollm2-135m-instruct", "template": template}))
    return folder


def test_the_template_is_the_one_grape_trained_the_model_with(tmp_path, capsys):
    model = _trained_model(tmp_path / "sft", "chat")
    data = _questions(tmp_path, {"model": "smollm2-135m-instruct", "template": "raw", "eos": True})
    settings = with_model_defaults(RLSettings(model=str(model)), data)
    assert (settings.model, settings.template, settings.eos) == (str(model), "chat", True)
    said = capsys.readouterr().err
    assert f"prompting with --template chat, the template {model} was trained with" in said
    assert "warning" not in said  # the warm-up model is not the sidecar's model, and that is no mismatch


def test_else_the_sidecars_template_else_paper(tmp_path, capsys):
    data = _questions(tmp_path, {"model": "smollm2-135m-instruct", "template": "raw", "eos": False})
    settings = with_model_defaults(RLSettings(model=str(tmp_path)), data)  # a folder grape did not train
    assert (settings.template, settings.eos) == ("raw", False)
    assert f"prompting with --template raw, the template {data} was prepared with" in capsys.readouterr().err
    bare = write_rows([{"prompt": "1 + 1?", "answer": "2"}], tmp_path / "bare.jsonl")
    settings = with_model_defaults(RLSettings(model=str(tmp_path)), bare)
    assert (settings.template, settings.eos) == ("paper", True)
    assert "prompting with --template paper, grape's default" in capsys.readouterr().err


def test_a_template_given_is_kept_with_a_warning_when_the_model_was_trained_with_another(tmp_path, capsys):
    model = _trained_model(tmp_path / "sft", "chat")
    settings = with_model_defaults(RLSettings(model=str(model), template="paper"), _questions(tmp_path))
    assert settings.template == "paper"
    assert "was trained with --template chat" in capsys.readouterr().err


def test_without_a_model_the_one_the_questions_were_prepared_for(tmp_path):
    data = _questions(tmp_path, {"model": "smollm2-135m-instruct", "template": "raw", "eos": True})
    settings = with_model_defaults(RLSettings(), data)
    assert (settings.model, settings.template) == ("smollm2-135m-instruct", "raw")
    bare = write_rows([{"prompt": "1 + 1?", "answer": "2"}], tmp_path / "bare.jsonl")
    assert with_model_defaults(RLSettings(), bare).model == DEFAULT_TARGET  # no sidecar: grape's default


def test_a_run_from_a_model_trained_in_chat_renders_and_records_chat(tiny_llama_dir, tmp_path, capsys):
    model = tmp_path / "sft"
    shutil.copytree(tiny_llama_dir, model)
    (model / "grape-sft.yaml").write_text(yaml.safe_dump({"model": "smollm2-135m-instruct", "template": "chat"}))
    out = tmp_path / "rl"
    rl(_questions(tmp_path), out, RLSettings(model=str(model), verifier="number", batch_size=1, max_steps=1,
                                             max_new_tokens=2, device="cpu"))  # fmt: skip
    assert yaml.safe_load((out / "grape-rl.yaml").read_text())["template"] == "chat"
    assert json.loads((out / "grape-rl.json").read_text())["settings"]["template"] == "chat"
    assert "rendered with template `chat`" in (out / "README.md").read_text()
    assert "prompting with --template chat" in capsys.readouterr().err
