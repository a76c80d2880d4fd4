"""The engine equals the naive reference (float32, within 1e-4 nats per token) however it batches, with attention
per prompt and response (the CPU's way) and with one mask per packed row (the GPU's)."""

import random

import pytest
import torch
from reference import naive_sum_logprob
from tiny_models import tiny_gemma3, tiny_llama

from grape.errors import GrapeError
from grape.models import segment_attention
from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.packing import TokenGroup
from grape.scoring.settings import DEVICE_DEFAULTS

TOLERANCE = 1e-4


def random_groups(vocab: int, n: int, seed: int, prompt=(1, 40), response=(1, 30), k=(1, 6)) -> list[TokenGroup]:
    rng = random.Random(seed)
    draw = lambda lo_hi: [rng.randrange(3, vocab) for _ in range(rng.randint(*lo_hi))]  # noqa: E731
    return [TokenGroup(draw(prompt), [draw(response) for _ in range(rng.randint(*k))]) for _ in range(n)]


def max_error(model, groups, settings) -> float:
    results = ScoringEngine(model, settings).score(groups)
    worst = 0.0
    for group, result in zip(groups, results, strict=True):
        assert result.n_tokens.tolist() == [len(r) for r in group.responses]
        for k, response in enumerate(group.responses):
            reference = naive_sum_logprob(model, group.prompt, response)
            worst = max(worst, abs(reference - result.sum_logprob[k]) / len(response))
    return worst


@pytest.fixture(scope="module", params=["gemma3", "llama"])
def model(request):
    return tiny_gemma3(sliding_window=8) if request.param == "gemma3" else tiny_llama()


@pytest.fixture(params=["segments", "mask", "flex", "varlen"])
def attention(request):
    return request.param


@pytest.mark.parametrize(
    ("batch_tokens", "max_row_tokens"), [(1, 1), (64, 32), (300, 128), (4096, 4096)], ids=["one", "s", "m", "l"]
)
def test_engine_matches_reference_at_any_batch_size(model, batch_tokens, max_row_tokens, attention):
    groups = random_groups(model.config.vocab_size, 12, seed=batch_tokens)
    assert max_error(model, groups, EngineSettings(batch_tokens, max_row_tokens, attention=attention)) < TOLERANCE


def test_engine_is_independent_of_order(model, attention):
    groups = random_groups(model.config.vocab_size, 10, seed=3)
    engine = ScoringEngine(model, EngineSettings(512, 256, attention=attention))
    forward = engine.score(groups)
    backward = engine.score(groups[::-1])[::-1]
    for a, b in zip(forward, backward, strict=True):
        assert abs(a.sum_logprob - b.sum_logprob).max() < 1e-4


@pytest.mark.parametrize("k", [1, 2, 16])
def test_engine_k_candidates(model, k, attention):
    groups = random_groups(model.config.vocab_size, 3, seed=k, k=(k, k))
    assert max_error(model, groups, EngineSettings(2048, 512, attention=attention)) < TOLERANCE


def test_engine_prompts_shorter_and_longer_than_responses_and_mixed_lengths(model, attention):
    short_prompts = random_groups(model.config.vocab_size, 4, seed=5, prompt=(1, 2), response=(30, 60))
    long_prompts = random_groups(model.config.vocab_size, 4, seed=6, prompt=(60, 90), response=(1, 3))
    rng = random.Random(7)
    mixed = [TokenGroup([4, 5, 6], [[rng.randrange(3, 200) for _ in range(n)] for n in (1, 70, 2, 35)])]
    groups = short_prompts + long_prompts + mixed
    assert max_error(model, groups, EngineSettings(1024, 256, attention=attention)) < TOLERANCE


def test_sliding_window_is_respected_beyond_the_window(attention):
    model = tiny_gemma3(sliding_window=4)  # sequences far longer than the window
    groups = random_groups(model.config.vocab_size, 3, seed=9, prompt=(20, 30), response=(10, 20))
    assert max_error(model, groups, EngineSettings(4096, 4096, attention=attention)) < TOLERANCE


def test_segments_attend_run_by_run(monkeypatch):
    """The CPU default cuts rows by position (no mask built) and leaves the model's implementation as it was; a
    model on eager attention is refused (it would add the boolean masks as numbers)."""
    cuts = []
    original = segment_attention.plan_runs
    monkeypatch.setattr(segment_attention, "plan_runs", lambda p: cuts.append(p) or original(p))
    monkeypatch.setattr("grape.scoring.engine.packed_attention_mask", None)  # calling it would fail
    model = tiny_llama()
    groups = random_groups(model.config.vocab_size, 4, seed=13)
    assert max_error(model, groups, EngineSettings()) < TOLERANCE
    assert cuts and model.config._attn_implementation == "sdpa"
    model.set_attn_implementation("eager")
    with pytest.raises(GrapeError, match="SDPA attention"):
        ScoringEngine(model)


@pytest.mark.parametrize("tile", [1, 7, 64])
def test_any_vocabulary_tile_matches_reference(model, tile):
    """The LM head's tile (``vocab_tile``: a benchmark's sweep) changes only how the log-sum-exp is folded; 7
    entries do not divide the tiny vocabulary, one leaves each tile a single logit."""
    groups = random_groups(model.config.vocab_size, 6, seed=tile)
    settings = EngineSettings(512, 256, vocab_tile=tile)
    assert ScoringEngine(model, settings).vocab_tile == tile
    assert max_error(model, groups, settings) < TOLERANCE


def test_unknown_attention_kind_is_refused():
    with pytest.raises(ValueError, match="segments, mask"):
        EngineSettings(attention="flash")


def test_bfloat16_engine_is_close_to_float32_reference():
    model = tiny_gemma3()
    groups = random_groups(model.config.vocab_size, 4, seed=11)
    low = ScoringEngine(tiny_gemma3().to(torch.bfloat16), EngineSettings(1024, 256)).score(groups)
    for group, result in zip(groups, low, strict=True):
        for k, response in enumerate(group.responses):
            reference = naive_sum_logprob(model, group.prompt, response)
            assert abs(reference - result.sum_logprob[k]) / len(response) < 0.05


def test_unset_settings_take_the_device_defaults():
    assert EngineSettings().for_device("cpu") == DEVICE_DEFAULTS["cpu"]
    assert EngineSettings().for_device("cuda") == DEVICE_DEFAULTS["cuda"]
    mixed = EngineSettings(batch_tokens=100, compile=True).for_device("cuda")
    assert (mixed.batch_tokens, mixed.max_row_tokens, mixed.compile) == (
        100,
        DEVICE_DEFAULTS["cuda"].max_row_tokens,
        True,
    )
    assert ScoringEngine(tiny_llama()).settings == DEVICE_DEFAULTS["cpu"]


def test_compiled_engine_matches_reference(attention):
    """torch.compile (dynamic shapes) fuses the decoder's kernels; the scores must not move. Batches of
    different shapes go through the one compiled graph (the run-by-run attention runs eagerly between). Each
    attention compiles from scratch: what an earlier test compiled does not decide what this one runs."""
    torch._dynamo.reset()
    model = tiny_llama()
    groups = random_groups(model.config.vocab_size, 8, seed=12)
    assert max_error(model, groups, EngineSettings(256, 128, compile=True, attention=attention)) < TOLERANCE
