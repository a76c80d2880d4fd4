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
