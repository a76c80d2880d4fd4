"""Reward scoring: the value is the model's own (transformers' forward on the text alone), the text is the whole
text's tokens, and the cached scorer equals full computation even where the tokenizer re-splits the shared tail."""

from __future__ import annotations

import pytest
import torch
from decoding_models import reward_model

from grape.decoding.reward import CachedRewardScorer, PlainRewardScorer, load_reward_model
from grape.errors import GrapeError
from grape.models.kv_cache import shared_prefix_length

PROMPT = "Name a colour."
RESPONSES = ["Blue", "The sky is blue on a clear day", "Red, like a tomato", "Green"]
FINISHED = [True, False, True, False]


def alone(rm, response: str, finished: bool) -> float:
    """The reference: transformers' sequence-classification forward on the whole text, one text per batch."""
    text = f"Question: {PROMPT}\nAnswer: {response}"
    ids = rm.tokenizer(text)["input_ids"] + ([rm.tokenizer.eos_token_id] if finished else [])
    return rm.model(input_ids=torch.tensor([ids])).logits[0, 0].item()


@pytest.mark.parametrize("shape", ["llama", "gemma3"])
def test_rewards_are_the_models_own_at_each_texts_last_token(tokenizer, shape):
    rm = reward_model(tokenizer, 5, shape)
    expected = [alone(rm, r, f) for r, f in zip(RESPONSES, FINISHED, strict=True)]
    for scorer in (PlainRewardScorer(rm), CachedRewardScorer(rm)):
        scorer.start(PROMPT)
        assert scorer.score(RESPONSES, FINISHED).tolist() == pytest.approx(expected, abs=1e-5)
    assert len(set(round(e, 4) for e in expected)) == 4  # four texts, four rewards: a real check


def test_the_cache_is_rebuilt_where_the_tokenizer_resplits_the_shared_tail(tokenizer):
    rm = reward_model(tokenizer, 6)
    first, then = ["Hel p", "Hel q"], ["Hello", "Help"]
    hel = tokenizer(" Hel", add_special_tokens=False)["input_ids"]  # after "Answer:", a word has its space
    assert len(hel) == 1 and tokenizer(" Hello", add_special_tokens=False)["input_ids"][0] != hel[0]  # the premise
    cached, plain = CachedRewardScorer(rm), PlainRewardScorer(rm)
    for scorer in (cached, plain):
        scorer.start(PROMPT)
    assert cached.score(first, [False, False]).tolist() == pytest.approx(plain.score(first, [False, False]).tolist(),
                                                                         abs=1e-5)  # fmt: skip
    assert cached.cache_ids[-1] == hel[0] and cached.rebuilds == 0  # "Hel" was shared, so cached
    assert cached.score(then, [True, False]).tolist() == pytest.approx(plain.score(then, [True, False]).tolist(),
                                                                       abs=1e-5)  # fmt: skip
    assert cached.rebuilds == 1  # "Hello" is one token: the cached "Hel" is no prefix of it any more
    grown = ["Hello there, friend", "Hello there, you"]
    assert cached.score(grown, [False, False]).tolist() == pytest.approx(plain.score(grown, [False, False]).tolist(),
                                                                         abs=1e-5)  # fmt: skip
    assert cached.rebuilds == 1 and cached.tokens_fed < plain.tokens_fed


def test_shared_prefix_length():
    assert shared_prefix_length([[1, 2, 3], [1, 2, 4], [1, 2]]) == 2
    assert shared_prefix_length([[5], [6]]) == 0
    assert shared_prefix_length([[1, 2], [1, 2]]) == 2


def test_a_causal_lm_is_refused_as_a_reward_model(tmp_path, tokenizer):
    from decoding_models import causal

    causal(tokenizer, 0).model.save_pretrained(tmp_path)
    with pytest.raises(GrapeError, match="not a reward model"):
        load_reward_model(str(tmp_path), device="cpu")
