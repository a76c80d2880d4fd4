"""The four decoders on tiny random models: greedy equals transformers' greedy generate, the cached path equals
full recomputation, rewards steer the choice, indirect transfer weights as written, decoding stops at EOS."""

from __future__ import annotations

import math

import pytest
import torch
from decoding_models import causal, reward_model
from transformers import GenerationConfig

from grape.decoding.decoder import Decoder
from grape.decoding.settings import DecodeSettings
from grape.text import Renderer

PROMPT = "What is the capital of France?"


def settings(**overrides) -> DecodeSettings:
    base = dict(model="sft", baseline="baseline", reward="r", top_k=4, rollout_tokens=5, max_new_tokens=8)
    return DecodeSettings(**{**base, **overrides})


def hf_greedy(loaded, ids: list[int], max_new_tokens: int, eos) -> list[int]:
    """transformers' own greedy decoding: the independent reference."""
    config = GenerationConfig(max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=eos, pad_token_id=0)
    out = loaded.model.generate(input_ids=torch.tensor([ids]), generation_config=config)
    return out[0, len(ids) :].tolist()


def test_alpha_zero_reproduces_greedy_decoding_of_the_sft_model(sft, baseline, reward):
    decoder = Decoder(settings(method="tq", alpha=0.0), sft, baseline, reward)
    ids = decoder.renderer.generation_ids(PROMPT)
    expected = hf_greedy(sft, ids, 8, sft.tokenizer.eos_token_id)
    decoded = decoder.decode(PROMPT)
    assert decoded.tokens == expected
    assert all(step.values is not None for step in decoded.steps)  # the rollouts ran; α = 0 ignored them
    assert Decoder(settings(method="greedy"), sft).decode(PROMPT).tokens == expected
    assert Decoder(settings(method="greedy", cache=False), sft).decode(PROMPT).tokens == expected
    # the prior it reports is π_sft's log-prob of each token it took
    full = sft.model(input_ids=torch.tensor([ids + expected])).logits[0].float().log_softmax(-1)
    by_hand = sum(full[len(ids) - 1 + i, t].item() for i, t in enumerate(expected))
    assert decoded.sft_logprob == pytest.approx(by_hand, abs=1e-4)


@pytest.mark.parametrize("shape", ["llama", "gemma3"])
@pytest.mark.parametrize("method,transfer", [("tq", "direct"), ("tq", "indirect"), ("args", "direct")])
def test_the_cached_path_equals_full_recomputation(tokenizer, shape, method, transfer):
    """Same choices and Q̂ within 1e-4 (fp32); the Gemma 3 shape's window of 4 is shorter than every prefix."""
    sft, baseline = causal(tokenizer, 10, shape), causal(tokenizer, 11, shape)
    r, r_bl = reward_model(tokenizer, 12, shape), reward_model(tokenizer, 13, shape)
    chosen = dict(method=method, transfer=transfer, baseline_reward="r_bl", alpha=5.0)
    cached = Decoder(settings(**chosen), sft, baseline, r, r_bl)
    plain = Decoder(settings(**chosen, cache=False), sft, baseline, r, r_bl)
    a, b = cached.decode(PROMPT), plain.decode(PROMPT)
    assert a.tokens == b.tokens and [s.chosen for s in a.steps] == [s.chosen for s in b.steps]
    for one, other in zip(a.steps, b.steps, strict=True):
        assert one.candidates == other.candidates
        assert one.values == pytest.approx(other.values, abs=1e-4)
        assert one.prior == pytest.approx(other.prior, abs=1e-4)
    assert a.reward == pytest.approx(b.reward, abs=1e-4)
    # the caches did save work: the reward model read fewer positions than the plain loop made it read
    assert cached.work()["reward_tokens"] < plain.work()["reward_tokens"] / 2
    if method == "tq":
        assert cached.work()["baseline_tokens"] < plain.work()["baseline_tokens"]


def test_a_reward_that_pays_for_one_token_picks_it(sft, baseline, tokenizer):
    greedy = Decoder(settings(method="greedy"), sft)
    first = greedy.decode(PROMPT).steps[0]
    candidates = sft.model(input_ids=torch.tensor([greedy.renderer.generation_ids(PROMPT)])).logits[0, -1].topk(4)
    wanted = int(candidates.indices[2])  # the third most likely first token, not greedy's choice
    assert first.candidates[first.chosen] != wanted
    text = tokenizer.decode([wanted]).strip()

    def pays(prompt, response, finished):  # 10 for a response that starts with the wanted token
        return 10.0 if response.startswith(text) else 0.0

    decoded = Decoder(settings(method="tq", max_new_tokens=2), sft, baseline, pays).decode(PROMPT)
    assert decoded.tokens[0] == wanted and decoded.steps[0].values[2] == 10.0

    # ARGS with a real reward model whose reward is high exactly when the text it reads ends in `paid`: the last
    # token of the prompt + `wanted` text, as the reward model tokenises it
    rm = reward_model(tokenizer, 3)
    paid = Renderer(tokenizer, "paper", eos=False).encode(PROMPT, [text])[0].response[-1]
    with torch.no_grad():
        for layer in rm.model.model.layers:  # no layer writes to the residual stream: hidden = embedding
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        rm.model.model.embed_tokens.weight[:, 0] = 0.0
        rm.model.model.embed_tokens.weight[paid, 0] = 5.0
        rm.model.score.weight.zero_()
        rm.model.score.weight[0, 0] = 1.0
    decoded = Decoder(settings(method="args", alpha=10.0, max_new_tokens=1), sft, None, rm).decode(PROMPT)
    assert decoded.tokens == [wanted] and decoded.steps[0].values[2] > 1.0
    assert max(v for i, v in enumerate(decoded.steps[0].values) if i != 2) == pytest.approx(0.0, abs=1e-6)


def test_indirect_transfer_weights_each_rollout_as_computed_by_hand(sft, baseline):
    def r(prompt, response, finished):
        return len(response) / 10

    def r_bl(prompt, response, finished):
        return response.count("e") / 4

    s = settings(method="tq", transfer="indirect", baseline_reward="r_bl", beta=2.0, rollout_tokens=3,
                 max_new_tokens=1)  # fmt: skip
    decoder = Decoder(s, sft, baseline, r, r_bl)
    step = decoder.decode(PROMPT).steps[0]
    ids = decoder.renderer.generation_ids(PROMPT)
    for candidate, value in zip(step.candidates, step.values, strict=True):
        rollout = hf_greedy(baseline, ids + [candidate], 3, baseline.tokenizer.eos_token_id)
        tokens = [t for t in [candidate, *rollout] if t != baseline.tokenizer.eos_token_id]
        text = baseline.tokenizer.decode(tokens, skip_special_tokens=True).lstrip()
        if baseline.tokenizer.eos_token_id in [candidate, *rollout]:
            text = text.strip()
        expected = math.exp((r(PROMPT, text, False) - r_bl(PROMPT, text, False)) / 2.0) * r(PROMPT, text, False)
        assert value == pytest.approx(expected, rel=1e-5)


def test_decoding_stops_at_an_end_token(tokenizer):
    model = causal(tokenizer, 20)
    free = Decoder(settings(method="greedy"), model).decode(PROMPT)
    assert free.finish_reason == "length" and len(free.tokens) == 8
    third = free.tokens[2]
    # a second end token, as chat models have (<end_of_turn> beside <eos>)
    model.model.generation_config.eos_token_id = [tokenizer.eos_token_id, third]
    for method in ("greedy", "tq"):
        decoder = Decoder(settings(method=method, alpha=0.0), model, model, reward_model(tokenizer, 21))
        decoded = decoder.decode(PROMPT)
        assert decoded.finish_reason == "stop"
        assert decoded.tokens == free.tokens[:2]  # the end token is not part of the response
        assert len(decoded.steps) == 3  # and no step came after it
        assert decoded.tokens == hf_greedy(model, decoder.renderer.generation_ids(PROMPT), 8,
                                           [tokenizer.eos_token_id, third])[:-1]  # fmt: skip


def test_rollout_rows_stop_at_their_end_token_and_sampling_is_seeded(sft, tokenizer):
    decoder = Decoder(settings(method="greedy"), sft)
    sft_lm = decoder.sft
    sft_lm.start(decoder.renderer.generation_ids(PROMPT))
    eos = tokenizer.eos_token_id
    rows = sft_lm.continue_rows(torch.tensor([eos, 100, 200]), 4, 0.0, None)
    assert rows.tokens[0] == [eos] and rows.ended[0]  # ended at its first token: nothing follows
    assert [len(t) for t in rows.tokens[1:]] == [5, 5] and rows.ended[1:] == [False, False]
    draw = [sft_lm.continue_rows(torch.tensor([100, 100]), 6, 1.0, torch.Generator().manual_seed(7)) for _ in "ab"]
    assert draw[0].tokens == draw[1].tokens and draw[0].tokens[0] != draw[0].tokens[1]  # seeded, rows independent


def test_best_of_n_answers_with_the_sample_the_reward_scores_highest(sft):
    seen: list[str] = []

    def longest(prompt, response, finished):
        seen.append(response)
        return float(len(response))

    decoder = Decoder(settings(method="bon", n=4, max_new_tokens=6), sft, None, longest)
    decoded = decoder.decode(PROMPT, seed=3)
    assert len(seen) == 4  # the n samples, each scored once
    assert decoded.text == max(seen[:4], key=len) and decoded.reward == float(len(decoded.text))
    assert Decoder(settings(method="bon", n=4, max_new_tokens=6), sft, None, longest).decode(PROMPT, 3).text == \
        decoded.text  # fmt: skip


def test_the_sampling_choice_is_seeded_and_at_a_low_temperature_is_the_greedy_one(sft, baseline, reward):
    def run(**chosen):
        seed = chosen.pop("seed", 5)
        return Decoder(settings(method="tq", max_new_tokens=4, **chosen), sft, baseline, reward).decode(PROMPT, seed)

    greedy = run()
    assert run(choice="sample", temperature=1e-4).tokens == greedy.tokens  # softmax(scores / T) → the argmax
    hot = [run(choice="sample", temperature=50.0).tokens for _ in range(2)]
    assert hot[0] == hot[1]  # the prompt's seed fixes every draw
    assert any(run(choice="sample", temperature=50.0, seed=s).tokens != hot[0] for s in (1, 2, 3))
