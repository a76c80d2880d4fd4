"""The generator on a transformers model: it continues the whole text's tokens, its texts are what the sampled
ids decode to, and its log-probs are the model's own, checked against a plain sampler (the whole context through
the model at every token, no cache, no batch, the same random streams) and scoring the result in one forward
pass; several requests sampled as one batch give what each gives alone (a tiny random Llama with SmolLM2's
tokenizer and chat template; a tiny Gemma 3 with a sliding window)."""

import math

import pytest
import torch
from reference import naive_sum_logprob

from grape.search.generator import Request
from grape.search.hf_generator import HFGenerator, decoded_after, end_token_ids
from grape.search.row_sampling import row_stream
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


def _reference(model, context, seed, n, end_ids, temperature=1.5, max_new_tokens=8):
    """Sample each row alone: the whole context through the model at every token, the token of largest
    exp(logit / temperature) / E for the row stream's next exponential numbers E (compared one by one)."""
    samples = []
    for row in range(n):
        stream, ids = row_stream(seed, row), []
        while len(ids) < max_new_tokens:
            logits = model(input_ids=torch.tensor([context + ids])).logits[0, -1].double().tolist()
            race = stream.standard_exponential(len(logits))
            token = max(range(len(logits)), key=lambda i: math.exp(logits[i] / temperature) / race[i])
            if token in end_ids:
                break
            ids.append(token)
        samples.append(ids)
    return samples


@pytest.mark.parametrize("prefix", ["", "get_weather(city="])
def test_continuations_decode_the_sampled_ids_and_carry_the_models_log_probs(generator, tiny_smol, prefix):
    tokenizer, model = tiny_smol.tokenizer, tiny_smol.model
    (continuations,) = generator.sample([Request(PROMPT, prefix, 3, seed=7)])
    context, head = generator.context_ids(PROMPT, prefix)
    samples = _reference(model, context, 7, 3, generator.end_ids)
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
    (again,) = generator.sample([Request(PROMPT, prefix, 3, seed=7)])
    assert [c.text for c in again] == [c.text for c in continuations]


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
CALLS = [Request(PROMPT, "", 3, 1), Request(PROMPT, "get_weather(city=", 3, 2),
         Request(PROMPT, "get_weather(city='Paris'", 1, 3), Request(OTHER, "", 2, 4), Request(OTHER, "get_time(", 1, 5),
         Request(PROMPT, "get", 2, 6)]  # fmt: skip


def _one_at_a_time(generator, calls=CALLS):
    return [generator.sample([request])[0] for request in calls]


def _agree(ours, reference):
    for mine, theirs in zip(ours, reference, strict=True):
        assert len(mine) == len(theirs)
        for a, b in zip(mine, theirs, strict=True):
            assert (a.text, a.finished, a.token_ends) == (b.text, b.finished, b.token_ends)
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_the_kept_prompt_cache_samples_what_the_whole_context_samples(tiny_smol):
    """Continuing a copy of the prompt's kept cache draws the same tokens, with the same log-probs, as computing
    the whole context on every call; each prompt is computed once per run of calls on it."""
    renderer = Renderer(tiny_smol.tokenizer, "chat", eos=False)
    cached = HFGenerator(tiny_smol, renderer, max_new_tokens=8, temperature=1.5)
    plain = HFGenerator(tiny_smol, renderer, max_new_tokens=8, temperature=1.5, prompt_cache=False)
    _agree(_one_at_a_time(cached), _one_at_a_time(plain))
    assert cached.prompt_builds == 3 and plain.prompt_builds == 0  # PROMPT, OTHER, PROMPT again
    contexts = [len(cached.context_ids(r.prompt, r.prefix)[0]) for r in CALLS]
    kept = {id(p): len(renderer.generation_ids(p)) - 1 for p in (PROMPT, OTHER)}
    assert plain.tokens_fed == sum(contexts)  # every call computes its whole context, once for its n rows
    # each prompt's kept ids once a run of calls on it, then each call's ids after them
    assert cached.tokens_fed == 2 * kept[id(PROMPT)] + kept[id(OTHER)] + sum(
        n - kept[id(r.prompt)] for n, r in zip(contexts, CALLS, strict=True))  # fmt: skip
    assert list(cached.kept) == [tuple(renderer.generation_ids(PROMPT)[:-1])]  # the latest call's prompt only


@pytest.mark.parametrize("prompt_cache", [True, False])
def test_requests_sampled_as_one_batch_give_what_each_gives_alone(tiny_smol, prompt_cache):
    """Two questions' calls (other prompts, prefixes and row counts) decode as one left-padded batch, each row at
    its own positions and from its own stream: the same continuations as each call alone."""
    renderer = Renderer(tiny_smol.tokenizer, "chat", eos=False)
    together = HFGenerator(tiny_smol, renderer, max_new_tokens=8, temperature=1.5, prompt_cache=prompt_cache)
    alone = HFGenerator(tiny_smol, renderer, max_new_tokens=8, temperature=1.5, prompt_cache=prompt_cache)
    for generator in (together, alone):  # one token in 7 ends an answer: rows end at different steps
        generator.end_ids = set(range(0, len(tiny_smol.tokenizer), 7))
    calls = [CALLS[1], CALLS[3], CALLS[2], CALLS[4]]
    batched = together.sample(calls)
    assert together.batches == 1 and [len(c) for c in batched] == [3, 2, 1, 1]
    assert together.sample([]) == [] and together.batches == 1
    _agree(batched, _one_at_a_time(alone, calls))
    lengths = {len(c.logprobs) for continuations in batched for c in continuations}
    assert len(lengths) > 2  # rows ended at different steps (and were dropped from the batch)


def test_a_prompt_longer_than_a_sliding_window_is_kept_and_continued_alike(tiny_model_dir):
    """Gemma 3's sliding-window layers (window 16 here) keep only the window of a long prompt's cache; such a
    model's requests decode one batch each, and give what they give alone."""
    from grape.models.load import load_model

    loaded = load_model(str(tiny_model_dir), "float32", "cpu")
    renderer = Renderer(loaded.tokenizer, "paper", eos=False)
    prompt = "List three cities in France, and say which of them is the capital and why it became one."
    assert len(renderer.generation_ids(prompt)) > 16
    calls = [Request(prompt, "", 3, 1), Request(prompt, " Paris, Lyon", 2, 2), Request(prompt, " Paris", 1, 3)]
    results = []
    for prompt_cache in (True, False):
        generator = HFGenerator(loaded, renderer, max_new_tokens=6, temperature=1.5, prompt_cache=prompt_cache)
        results.append(_one_at_a_time(generator, calls))
    _agree(*results)
    together = HFGenerator(loaded, renderer, max_new_tokens=6, temperature=1.5)
    _agree(together.sample(calls), results[0])
    assert together.batches == len(calls)
