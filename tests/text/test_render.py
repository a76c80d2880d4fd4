"""The one renderer: templates, and ids equal to the whole text's tokenisation (real tokenizers, real corpora)."""

import json
from collections import Counter

import pytest
from reference import whole_text_ids
from shared_data import shared_file

from grape.errors import GrapeError
from grape.text import PromptError, Renderer

EDGE_RESPONSES = [
    " leading space",
    "\nleading newline",
    "héllo wörld",
    "emoji 🍇🚀",
    "中文回答：葡萄",
    "  two",
    "tab\tend ",
]
GSM8K_SOURCES = ("ground_truth", "6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


@pytest.mark.parametrize("which", ["gemma", "smollm2"])
def test_edge_responses_are_the_whole_texts_tokens(request, which):
    tokenizer = request.getfixturevalue(which).tokenizer
    renderer = Renderer(tokenizer, "paper", eos=True)
    for text, ids in zip(EDGE_RESPONSES, renderer.encode("Say it.", EDGE_RESPONSES), strict=True):
        assert ids.prompt + ids.response == whole_text_ids(tokenizer, "paper", "Say it.", text)
        assert ids.response[-1] == tokenizer.eos_token_id
        # nothing lost, nothing added: the response part decodes to the response (plus the prompt's space)
        assert tokenizer.decode(ids.prompt + ids.response[:-1], skip_special_tokens=True).endswith(text)
    assert Renderer(tokenizer, "paper", eos=False).encode("x", ["y"])[0].response[-1] != tokenizer.eos_token_id


def test_the_prompts_trailing_space_goes_with_the_first_word(gemma):
    """The regression of issue 11: `Answer: ` + `The` is `Answer:` + `▁The`, never `▁` + `The`."""
    tokenizer = gemma.tokenizer
    ids = Renderer(tokenizer, "paper").encode("What is the capital of France?", ["The capital is Paris."])[0]
    assert tokenizer.convert_ids_to_tokens(ids.prompt[-2:]) == ["Answer", ":"]
    assert tokenizer.convert_ids_to_tokens(ids.response[:2]) == ["▁The", "▁capital"]
    # all candidates of an instruction share the prompt ids, which are also what a generator continues from
    renderer = Renderer(tokenizer, "paper")
    encoded = renderer.encode("Name a colour.", ["Red.", "Blue is one.", "Green"])
    assert {tuple(e.prompt) for e in encoded} == {tuple(renderer.generation_ids("Name a colour."))}


def test_chat_responses_end_with_the_templates_end_of_turn(smollm2):
    tokenizer = smollm2.tokenizer
    renderer = Renderer(tokenizer, "chat")
    assert renderer.describe() == {"template": "chat", "response_end": "<|im_end|>"}
    ids = renderer.encode("Hi", ["Hello there."])[0]
    assert tokenizer.decode(ids.prompt).endswith("<|im_start|>assistant\n")
    assert tokenizer.convert_ids_to_tokens(ids.response) == ["Hello", "Ġthere", ".", "<|im_end|>"]
    assert renderer.generation_ids("Hi") == ids.prompt  # the template's "\n" is a token of its own
    # --no-eos: nothing after the response text
    bare = Renderer(tokenizer, "chat", eos=False).encode("Hi", ["Hi."])[0]
    assert tokenizer.convert_ids_to_tokens(bare.response) == ["Hi", "."]


def test_paper_template_and_bos(gemma):
    tokenizer = gemma.tokenizer
    renderer = Renderer(tokenizer, "paper")
    assert renderer.prompt_text("What is 2+2? ") == "Question: What is 2+2? \nAnswer: "
    ids = renderer.generation_ids("ends with newline\n")
    assert ids[0] == tokenizer.bos_token_id and ids.count(tokenizer.bos_token_id) == 1
    assert tokenizer.decode(ids[1:]) == "Question: ends with newline\n\nAnswer:"
    # a single-turn conversation renders like its string, a system turn is prepended
    assert renderer.prompt_text([{"role": "user", "content": "Hi"}]) == renderer.prompt_text("Hi")
    system = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    assert renderer.prompt_text(system) == "Question: Be brief.\n\nHi\nAnswer: "
    assert Renderer(tokenizer, "raw").prompt_text("as is ") == "as is "
    few_shot = Renderer(tokenizer, "few-shot").prompt_text("Hi")
    assert few_shot.endswith("\n\nQuestion: Hi\nAnswer: ") and few_shot.count("Question:") == 3


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
    assert smollm2.tokenizer.decode(renderer.generation_ids("Hi")) == text  # special tokens not added twice


def test_jinja_file_template(gemma, tmp_path):
    template = tmp_path / "t.jinja"
    template.write_text("### Instruction\n{{ instruction }}\n### Response\n")
    renderer = Renderer(gemma.tokenizer, str(template))
    assert renderer.prompt_text("Sum 1 and 2") == "### Instruction\nSum 1 and 2\n### Response\n"
    with pytest.raises(GrapeError, match="not one of"):
        Renderer(gemma.tokenizer, str(tmp_path / "missing.jinja"))


def test_a_tokenizer_without_offsets_gives_the_same_ids_on_plain_text(gemma):
    """The slow-tokenizer path (trailing whitespace moved to the response) agrees where words follow the prompt."""
    renderer = Renderer(gemma.tokenizer, "paper")
    for response in ("The capital is Paris.", "Paris", "Red, green and blue."):
        fast = renderer.encode("Q?", [response])[0]
        text = renderer.prompt_text("Q?")
        assert renderer._encode_without_offsets(text, response, special=True) == fast


def _corpus_pairs() -> list[tuple[str, str]]:
    """Every (instruction, response) of the AlpacaEval outputs and the GSM8K model solutions."""
    pairs = []
    with shared_file("alpaca_eval/model_outputs.jsonl").open(encoding="utf-8") as handle:
        pairs += [(row["instruction"], row["output"]) for row in map(json.loads, handle)]
    with shared_file("gsm8k/example_model_solutions.jsonl").open(encoding="utf-8") as handle:
        for row in map(json.loads, handle):
            for source in GSM8K_SOURCES:
                solution = row[source] if source == "ground_truth" else row[source]["solution"]
                pairs.append((row["question"], solution))
    return [(x, y) for x, y in pairs if y.strip()]  # 22 empty AlpacaEval outputs: the scorer refuses those


@pytest.mark.slow
@pytest.mark.parametrize(
    ("which", "template"), [("gemma", "paper"), ("gemma", "raw"), ("smollm2", "paper"), ("smollm2", "raw"),
                            ("smollm2", "chat")]
)  # fmt: skip
def test_real_corpora_ids_equal_the_whole_text_tokenisation(request, which, template):
    """18,648 pairs: grape's prompt + response ids equal the plain whole-text reference in every pair."""
    tokenizer = request.getfixturevalue(which).tokenizer
    renderer = Renderer(tokenizer, template)
    pairs = _corpus_pairs()
    by_instruction: dict[str, list[str]] = {}
    for instruction, response in pairs:
        by_instruction.setdefault(instruction, []).append(response)
    kinds: Counter = Counter()
    for instruction, responses in by_instruction.items():
        shared = tuple(renderer.generation_ids(instruction))
        for response, ids in zip(responses, renderer.encode(instruction, responses), strict=True):
            assert ids.prompt + ids.response == whole_text_ids(tokenizer, template, instruction, response), (
                instruction[:60],
                response[:60],
            )
            kinds[_split_kind(ids.prompt, shared)] += 1
    assert sum(kinds.values()) == len(pairs)
    # merges of a response's first characters with the prompt's last non-space ones: rare after a template
    # that ends in whitespace; `raw` glues instruction and response (`…Broadway?Several`), 2-3% merge there
    assert kinds["merged"] / len(pairs) <= (0.05 if template == "raw" else 0.005), kinds


def _split_kind(prompt: list[int], shared: tuple[int, ...]) -> str:
    """How a candidate's prompt ids relate to the instruction's shared ones (docs/scoring.md, "boundary")."""
    if tuple(prompt) == shared:
        return "shared"  # the usual case: the prompt's trailing space went into the response's first token
    if tuple(prompt[: len(shared)]) == shared:
        return "space token"  # the space stays a token of its own: before a digit (SmolLM2) or more whitespace
    return "merged"
