"""The generator on a transformers model: it continues the whole text's tokens, its texts are what the sampled
ids decode to, and its log-probs are the model's own, checked against sampling again and scoring the result in
one forward pass (a tiny random Llama with SmolLM2's tokenizer and chat template)."""

import pytest
import torch
from reference import naive_sum_logprob

from grape.search.hf_generator import HFGenerator, decoded_after, end_token_ids
from grape.text import Renderer

PROMPT = [{"role": "system", "content": "def get_weather(city: string): ..."},
          {"role": "user", "content": "Weather in Paris?"}]  # fmt: skip


@pytest.fixture(scope="module")
def generator(tiny_smol):
    return HFGenerator(tiny_smol, Renderer(tiny_smol.tokenizer, "chat", eos=False), max_new_tokens=8, temperature=1.5)


def test_the_context_is_the_whole_texts_tokens(generator, tiny_smol):
    tokenizer = tiny_smol.tokenizer
    text = Renderer(tokenizer, "chat").prompt_text(PROMPT)
    assert generator.context_ids(PROMPT, "") == (tokenizer(text)["input_ids"], [])
    for prefix in ("get_weather(city=", "get_weather(city='Paris',", "get_weather("):
        context, head = generator.context_ids(PROMPT, prefix)
        assert context == tokenizer(text + prefix)["input_ids"]  # never the ids of the pieces joined
        assert tokenizer.decode(head) == prefix


def _reference(model, tokenizer, context, seed, n, end_ids):
    """Sample again with the same seed (no logits asked), then score each sample in one forward pass."""
    torch.manual_seed(seed)
    ids = torch.tensor([context])
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=1.5,
                         top_k=0, top_p=1.0, max_new_tokens=8, num_return_sequences=n, pad_token_id=min(end_ids),
                         eos_token_id=sorted(end_ids))  # fmt: skip
    samples = []
    for row in out[:, len(context) :].tolist():
        cut = next((i for i, t in enumerate(row) if t in end_ids), len(row))
        samples.append(row[:cut])
    return samples


@pytest.mark.parametrize("prefix", ["", "get_weather(city="])
def test_continuations_decode_the_sampled_ids_and_carry_the_models_log_probs(generator, tiny_smol, prefix):
    tokenizer, model = tiny_smol.tokenizer, tiny_smol.model
    continuations = generator.sample(PROMPT, prefix, 3, seed=7)
    context, head = generator.context_ids(PROMPT, prefix)
    samples = _reference(model, tokenizer, context, 7, 3, generator.end_ids)
    assert len(continuations) == 3 and len({c.text for c in continuations}) > 1
    for continuation, ids in zip(continuations, samples, strict=True):
        whole = tokenizer.decode(head + ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)
        expected = whole[len(tokenizer.decode(head)) :]
        assert continuation.text == (expected.lstrip() if not prefix else expected)
        assert len(continuation.logprobs) == len(ids) and continuation.token_ends[-1] == len(continuation.text)
        assert continuation.token_ends == sorted(continuation.token_ends)
        reference = [naive_sum_logprob(model, context + ids[:k], ids[k : k + 1]) for k in range(len(ids))]
        assert continuation.logprobs == pytest.approx(reference, abs=1e-4)
        assert continuation.finished == (len(ids) < 8)
    assert [c.text for c in generator.sample(PROMPT, prefix, 3, seed=7)] == [c.text for c in continuations]


def test_token_ends_place_each_token_in_the_text(tiny_smol):
    tokenizer = tiny_smol.tokenizer
    head = tokenizer("get_weather(", add_special_tokens=False)["input_ids"]
    ids = tokenizer("get_weather(city='Paris')", add_special_tokens=False)["input_ids"][len(head) :]
    text, ends = decoded_after(tokenizer, head, ids)
    assert text == "city='Paris')"
    pieces = [text[a:b] for a, b in zip([0, *ends[:-1]], ends, strict=True)]
    assert pieces == [tokenizer.decode([i]) for i in ids]


def test_the_end_marker_of_the_chat_template_ends_an_answer(tiny_smol, generator):
    assert tiny_smol.tokenizer.convert_tokens_to_ids("<|im_end|>") in end_token_ids(tiny_smol, generator.renderer)
