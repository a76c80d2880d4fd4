"""Key-token weights (PKT): K, P and O found from character offsets, on hand spans and on both embedded tokenizers."""

import pytest
import torch

from grape.text import Renderer
from grape.tools.key_tokens import KeyCharacters, key_characters, token_weights
from grape.tools.parse import parse_calls
from grape.tools.render import plain_messages
from grape.tools.token_offsets import response_token_spans
from grape.tools.tool_docs import Tool
from grape.training.dataset import tokenise_examples
from grape.training.losses import sequence_weighted_nll

CALL = "get_weather(city='Paris')"
# A hand tokenisation of CALL: get | _ | weather | ( | city | =' | Paris | ') | <end marker>
SPANS = [(0, 3), (3, 4), (4, 11), (11, 12), (12, 16), (16, 18), (18, 23), (23, 25), None]


def _characters(text, tools):
    parsed = parse_calls(text)
    return key_characters(text, parsed.calls, parsed.spans, tools)


def test_key_and_closing_characters():
    # K: the name's first character, and where get_weather and get_time part (the 'w'); P: the quote and ')'
    assert _characters(CALL, ["get_weather", "get_time"]) == KeyCharacters(frozenset({0, 4}), frozenset({23, 24}))
    assert _characters(CALL, ["get_weather", "set_alarm"]).key == {0}  # no shared prefix: the first token decides
    assert _characters(CALL, ["get_weather", "get"]).key == {0, 3}  # 'get' stops where '_' begins
    assert _characters("get(a=1, b=[2])", ["get", "get_weather"]).key == {0, 3}  # the '(' after a prefix name
    assert _characters("get(a=1, b=[2])", ["get"]).closing == {7, 13, 14}  # ',' after 1; ']' and ')' after [2]
    json_call = '{"name": "get_weather", "arguments": {"city": "Paris"}}'
    assert _characters(json_call, ["get_weather", "get_time"]) == KeyCharacters(frozenset({10, 14}),
                                                                                frozenset({52, 53}))  # fmt: skip


def test_weights_from_hand_spans():
    weights = token_weights(SPANS, _characters(CALL, ["get_weather", "get_time"]))
    # |K| = 2 (get, weather), |P| = 1 (')), |O| = 6 (_, (, city, =', Paris, end): w = min(6 / 2, 9) = 3
    assert weights == [3.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    assert token_weights(SPANS, _characters(CALL, ["get_weather"]), max_weight=4.0) == [4.0] + [1.0] * 8  # 7 / 1 > 4
    assert token_weights(SPANS[:2], KeyCharacters(frozenset({0, 3}), frozenset())) == [1.0, 1.0]  # |K| >= |O|
    assert token_weights(SPANS, KeyCharacters(frozenset(), frozenset())) == [1.0] * 9  # a text answer


def test_a_character_outside_every_span_falls_to_the_next_token():
    assert token_weights([(1, 3), (4, 6), None, (6, 7)], KeyCharacters(frozenset({3}), frozenset())) == [1, 3, 1, 1]


def test_the_weighted_loss_is_tl_trainings():
    """sequence_weighted_nll with these weights equals (w·Σ_K ℓ + Σ_P ℓ + Σ_O ℓ) / (w·|K| + |P| + |O|)."""
    weights = torch.tensor(token_weights(SPANS, _characters(CALL, ["get_weather", "get_time"])))
    nll = torch.rand(len(SPANS)) * 5
    key, closing = [0, 2], [7]
    others = [i for i in range(len(SPANS)) if i not in key + closing]
    w = min(len(others) / len(key), 9)
    expected = (w * nll[key].sum() + nll[closing].sum() + nll[others].sum()) / (w * 2 + 1 + len(others))
    got = sequence_weighted_nll(-nll, weights, torch.zeros(len(SPANS), dtype=torch.long))
    assert torch.allclose(got, expected)


@pytest.mark.parametrize(("tokenizer", "template", "end"), [("smollm2_tokenizer", "chat", "<|im_end|>"),
                                                             ("gemma_tokenizer", "paper", "<eos>")])  # fmt: skip
def test_both_embedded_tokenizers(tokenizer, template, end, request):
    """BPE and SentencePiece: the same call, the same K and P, whatever the tokens look like."""
    tokenizer = request.getfixturevalue(tokenizer)
    renderer = Renderer(tokenizer, template)
    tools = [Tool("get_weather", "Weather.", {"city": {"type": "string"}}, ("city",)),
             Tool("get_time", "Time.", {"tz": {"type": "string"}}, ("tz",))]  # fmt: skip
    prompt = plain_messages([{"role": "user", "content": "What is the weather in Paris?"}], tools)
    spans = response_token_spans(renderer, prompt, CALL)
    ids = renderer.encode(prompt, [CALL])[0].response
    assert len(spans) == len(ids)
    tokens = [tokenizer.decode([i]) for i in ids]
    assert "".join(tokens[:-1]).strip() == CALL and tokens[-1] == end  # the whole text's tokens, then the end
    weights = token_weights(spans, _characters(CALL, ["get_weather", "get_time"]))
    key = [t.strip() for t, w in zip(tokens, weights, strict=True) if w > 1]
    assert key == ["get", "weather"]
    assert weights.count(1.0) == len(ids) - 2 and max(weights) == (len(ids) - 3) / 2
    row = {"prompt": prompt, "completion": CALL, "loss_weights": weights}
    (example,) = tokenise_examples([row], renderer, 4096, weighted=True)  # grape sft --loss weighted reads them
    assert example.loss_weights[-len(ids) :] == weights
