"""A Jinja template file is part of a step's key by content: editing it reruns the steps that render with it
(a step's own ``template``, a generator's ``template``), while a built-in template name keys by name only."""

from __future__ import annotations

from grape.pipeline import load_pipeline
from grape.pipeline.keys import step_identity

PIPELINE = """
workdir: run
steps:
  - name: gather
    type: generate
    input: prompts.jsonl
    models:
      - {name: plain, model: smollm2-135m-instruct, template: chat}
      - {name: own, model: smollm2-135m-instruct, template: ask.jinja}
  - {name: fit, type: score, input: cands.jsonl, model: smollm2-135m-instruct, template: fit.jinja}
  - {name: fit-paper, type: score, input: cands.jsonl, model: smollm2-135m-instruct, template: paper}
"""


def _keys(path):
    return {plan.name: step_identity(plan, {}) for plan in load_pipeline(path).steps}


def test_editing_a_template_file_changes_the_keys_of_the_steps_that_use_it(tmp_path):
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "Hi"}\n')
    (tmp_path / "cands.jsonl").write_text('{"prompt": "Hi", "response": "Hello"}\n')
    (tmp_path / "ask.jinja").write_text("Q: {{ instruction }}\nA: ")
    (tmp_path / "fit.jinja").write_text("Question: {{ instruction }}\nAnswer: ")
    path = tmp_path / "pipeline.yaml"
    path.write_text(PIPELINE)
    first = _keys(path)
    assert "settings.models[1].template" in first["gather"].inputs and "settings.template" in first["fit"].inputs
    assert not any("template" in label for label in first["fit-paper"].inputs)

    (tmp_path / "fit.jinja").write_text("Question: {{ instruction }}\nAnswer:")  # one space less
    second = _keys(path)
    assert second["fit"].key != first["fit"].key
    assert (second["gather"].key, second["fit-paper"].key) == (first["gather"].key, first["fit-paper"].key)

    (tmp_path / "ask.jinja").write_text("Q: {{ instruction }}\nA:")
    assert _keys(path)["gather"].key != first["gather"].key


def test_a_decode_steps_models_and_an_eval_steps_decode_file_resolve_from_the_yaml_and_key_by_content(tmp_path):
    (tmp_path / "prompts.jsonl").write_text('{"prompt": "Hi"}\n')
    for folder in ("rho", "rm"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "config.json").write_text('{"model_type": "llama"}')
    (tmp_path / "tq.yaml").write_text("method: greedy\n")
    (tmp_path / "items.jsonl").write_text('{"question": "1+1?", "answer": "2"}\n')
    path = tmp_path / "pipeline.yaml"
    path.write_text("""
workdir: run
steps:
  - {name: tq, type: decode, input: prompts.jsonl, model: smollm2-135m-instruct, baseline: rho, reward: rm}
  - {name: score-it, type: eval, data: items.jsonl, model: smollm2-135m-instruct, decode: tq.yaml}
""")
    plans = {plan.name: plan for plan in load_pipeline(path).steps}
    assert (plans["tq"].settings.baseline, plans["tq"].settings.reward) == (str(tmp_path / "rho"), str(tmp_path / "rm"))
    assert plans["score-it"].settings.decode == str(tmp_path / "tq.yaml")
    first = _keys(path)
    assert {"settings.baseline", "settings.reward"} <= set(first["tq"].inputs)
    (tmp_path / "rm" / "config.json").write_text('{"model_type": "llama", "num_labels": 1}')
    (tmp_path / "tq.yaml").write_text("method: tq\n")
    second = _keys(path)
    assert second["tq"].key != first["tq"].key and second["score-it"].key != first["score-it"].key
