"""A Jinja template sees the row's fields (generation passes them: S3FT's paraphrase prompt shows the gold answer)."""

from __future__ import annotations

import pytest

from grape.text import PromptError, Renderer
from grape.text.templates import PromptTemplate


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    from grape.models.load import resolve_model_dir

    return AutoTokenizer.from_pretrained(resolve_model_dir("smollm2-135m-instruct")[0])


def _template(tmp_path, text: str) -> str:
    path = tmp_path / "t.jinja"
    path.write_text(text)
    return str(path)


def test_a_jinja_template_sees_the_rows_fields_and_its_ids_are_the_whole_texts(tokenizer, tmp_path):
    template = _template(
        tmp_path, "Q: {{ instruction }}\nGold: {{ answer }} ({{ tests | length }} tests, {{ id }})\nA:"
    )
    renderer = Renderer(tokenizer, template, eos=False)
    fields = {"id": "q7", "answer": "#### 4", "tests": ["t1", "t2"], "prompt": "not the prompt"}
    text = renderer.prompt_text("2 + 2?", fields)
    assert text == "Q: 2 + 2?\nGold: #### 4 (2 tests, q7)\nA:"  # `prompt`/`instruction` keep their meaning
    assert renderer.generation_ids("2 + 2?", fields) == tokenizer(text)["input_ids"]
    (encoded,) = renderer.encode("2 + 2?", [" 4"], fields)
    assert encoded.prompt + encoded.response == tokenizer(text + " 4")["input_ids"]


def test_a_field_the_row_lacks_is_an_error_and_can_be_tested_for(tokenizer, tmp_path):
    strict = PromptTemplate(tokenizer, _template(tmp_path, "{{ instruction }} / {{ answer }}"))
    with pytest.raises(PromptError, match="'answer' is undefined"):
        strict.text("2 + 2?")
    optional = PromptTemplate(
        tokenizer, _template(tmp_path, "{{ instruction }}{% if answer is defined %} / {{ answer }}{% endif %}")
    )
    assert (optional.text("2 + 2?"), optional.text("2 + 2?", {"answer": "4"})) == ("2 + 2?", "2 + 2? / 4")


def test_built_in_templates_ignore_the_fields(tokenizer):
    for name in ("paper", "few-shot", "chat", "raw"):
        template = PromptTemplate(tokenizer, name)
        assert template.text("Hi", {"answer": "x"}) == template.text("Hi")
