"""Templates and tokenisation edge cases with the real embedded tokenizers."""

import pytest

from grape.errors import GrapeError
from grape.scoring.render import PromptError, Renderer

EDGE_RESPONSES = [
    " leading space",
    "\nleading newline",
    "héllo wörld",
    "emoji 🍇🚀",
    "中文回答：葡萄",
    "  two",
    "tab\tend ",
]


@pytest.mark.parametrize("which", ["gemma", "smollm2"])
def test_responses_round_trip_exactly_and_end_with_eos(request, which):
    tokenizer = request.getfixturevalue(which).tokenizer
    renderer = Renderer(tokenizer, "paper", eos=True)
    for text, ids in zip(EDGE_RESPONSES, renderer.response_ids(EDGE_RESPONSES), strict=True):
        assert ids[-1] == tokenizer.eos_token_id
        assert tokenizer.decode(ids[:-1]) == text  # no dummy prefix space, no lost whitespace
    assert Renderer(tokenizer, "paper", eos=False).response_ids(["x"])[0][-1] != tokenizer.eos_token_id


def test_paper_template_and_bos(gemma):
    tokenizer = gemma.tokenizer
    renderer = Renderer(tokenizer, "paper")
    assert renderer.prompt_text("What is 2+2? ") == "Question: What is 2+2? \nAnswer: "
    ids = renderer.prompt_ids(["ends with newline\n"])[0]
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.decode(ids[1:]) == "Question: ends with newline\n\nAnswer: "
    # a single-turn conversation renders like its string, a system turn is prepended
    assert renderer.prompt_text([{"role": "user", "content": "Hi"}]) == renderer.prompt_text("Hi")
    system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert renderer.prompt_text(system) == "Question: Be brief.\n\nHi\nAnswer: "
    assert Renderer(tokenizer, "raw").prompt_text("as is ") == "as is "


def test_multi_turn_needs_chat_template(gemma):
    turns = [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}, {"role": "user", "content": "c"}]
    with pytest.raises(PromptError, match="--template chat"):
        Renderer(gemma.tokenizer, "paper").prompt_text(turns)


def test_chat_template(gemma, smollm2):
    with pytest.raises(GrapeError, match="no chat template"):
        Renderer(gemma.tokenizer, "chat")  # a base model
    renderer = Renderer(smollm2.tokenizer, "chat")
    text = renderer.prompt_text("Hi")
    assert text.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    ids = renderer.prompt_ids(["Hi"])[0]
    assert smollm2.tokenizer.decode(ids) == text  # special tokens come from the template, not added twice


def test_jinja_file_template(gemma, tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("### Instruction\n{{ instruction }}\n### Response\n")
    renderer = Renderer(gemma.tokenizer, str(template))
    assert renderer.prompt_text("Sum 1 and 2") == "### Instruction\nSum 1 and 2\n### Response\n"
    with pytest.raises(GrapeError, match="not one of"):
        Renderer(gemma.tokenizer, str(tmp_path / "missing.jinja"))
