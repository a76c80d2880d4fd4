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


OTHER = [{"role": "system", "content": "def get_time(zone: string): ..."}, {"role": "user", "content": "Time in Oslo?"}]


# The calls of two questions' searches: expansions and rollouts of one prompt, then another, then the first again.
CALLS = [(PROMPT, "", 3, 1), (PROMPT, "get_weather(city=", 3, 2), (PROMPT, "get_weather(city='Paris'", 1, 3),
         (OTHER, "", 2, 4), (OTHER, "get_time(", 1, 5), (PROMPT, "get", 2, 6)]  # fmt: skip


def _search_like_calls(generator):
    return [generator.sample(prompt, prefix, n, seed) for prompt, prefix, n, seed in CALLS]


def _agree(cached, plain):
    for ours, reference in zip(cached, plain, strict=True):
        for a, b in zip(ours, reference, strict=True):
            assert (a.text, a.finished, a.token_ends) == (b.text, b.finished, b.token_ends)
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_the_kept_prompt_cache_samples_what_the_whole_context_samples(tiny_smol):
    """Continuing a copy of the prompt's kept cache draws the same tokens, with the same log-probs, as computing
    the whole context on every call; each prompt is computed once per run of calls on it."""
    renderer = Renderer(tiny_smol.tokenizer, "chat", eos=False)
    cached = HFGenerator(tiny_smol, renderer, max_new_tokens=8, temperature=1.5)
    plain = HFGenerator(tiny_smol, renderer, max_new_tokens=8, temperature=1.5, prompt_cache=False)
    _agree(_search_like_calls(cached), _search_like_calls(plain))
    assert cached.prompt_builds == 3 and plain.prompt_builds == 0  # PROMPT, OTHER, PROMPT again
    contexts = [len(cached.context_ids(prompt, prefix)[0]) for prompt, prefix, _, _ in CALLS]
    kept = {id(p): len(renderer.generation_ids(p)) - 1 for p in (PROMPT, OTHER)}
    assert plain.tokens_fed == sum(contexts)  # every call computes its whole context
    # each prompt's kept ids once a run of calls on it, then each call's ids after them
    assert cached.tokens_fed == 2 * kept[id(PROMPT)] + kept[id(OTHER)] + sum(
        n - kept[id(prompt)] for n, (prompt, *_) in zip(contexts, CALLS, strict=True))  # fmt: skip
    context, _ = cached.context_ids(PROMPT, "get")
    assert cached._kept_for(PROMPT, context) is not None  # the first prompt is the kept one now
    assert cached._kept_for(PROMPT, [context[0] + 1, *context[1:]]) is None  # a context not starting with it


def test_a_prompt_longer_than_a_sliding_window_is_kept_and_continued_alike(tiny_model_dir):
    """Gemma 3's sliding-window layers (window 16 here) keep only the window of a long prompt's cache."""
    from grape.models.load import load_model

    loaded = load_model(str(tiny_model_dir), "float32", "cpu")
    renderer = Renderer(loaded.tokenizer, "paper", eos=False)
    prompt = "List three cities in France, and say which of them is the capital and why it became one."
    assert len(renderer.generation_ids(prompt)) > 16
    calls = [(prompt, "", 3, 1), (prompt, " Paris, Lyon", 2, 2), (prompt, " Paris", 1, 3)]
    results = []
    for prompt_cache in (True, False):
        generator = HFGenerator(loaded, renderer, max_new_tokens=6, temperature=1.5, prompt_cache=prompt_cache)
        results.append([generator.sample(p, prefix, n, seed) for p, prefix, n, seed in calls])
    _agree(*results)
