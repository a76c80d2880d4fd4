"""Batches in flight: results come back in order, each after its launch, with at most ``depth`` launched ahead;
the engine scores the same with one batch in flight or several (the overlap itself needs a GPU:
test_engine_cuda.py checks that launching a batch never waits for the device)."""

import numpy as np
import pytest
import torch
from test_engine import random_groups
from tiny_models import tiny_llama

from grape.scoring.engine import EngineSettings, ScoringEngine
from grape.scoring.in_flight import HostCopy, in_flight, to_device
from grape.scoring.settings import DEVICE_DEFAULTS


@pytest.mark.parametrize("depth", [1, 2, 3, 10])
def test_each_item_comes_back_in_order_with_at_most_depth_launched_ahead(depth):
    events = []

    def launch(item: int) -> HostCopy:
        events.append(("launch", item))
        return HostCopy(torch.tensor([item, item * item], dtype=torch.float64))

    for item, result in in_flight(range(7), launch, depth):
        events.append(("read", item))
        assert result.tolist() == [item, item * item]
        launched = [i for kind, i in events if kind == "launch"]
        assert item in launched and max(launched) - item <= depth - 1  # never more than depth ahead
    reads = [i for kind, i in events if kind == "read"]
    assert reads == list(range(7))
    first_read = events.index(("read", 0))
    assert events[:first_read] == [("launch", i) for i in range(min(depth, 7))]  # depth launched before a read


def test_depth_below_one_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        list(in_flight([1], lambda item: HostCopy(torch.zeros(1)), 0))
    with pytest.raises(ValueError, match="batches_in_flight must be at least 1"):
        EngineSettings(batches_in_flight=0)


def test_the_copies_on_a_cpu_are_plain_ones():
    tensor = torch.arange(5)
    assert to_device(tensor, torch.device("cpu")) is tensor
    copy = HostCopy(tensor.double())
    assert copy.ready is None and isinstance(copy.result(), np.ndarray)


def test_the_engine_scores_the_same_with_several_batches_in_flight():
    model = tiny_llama()
    groups = random_groups(model.config.vocab_size, 12, seed=31)
    progress = {1: [], 3: []}
    scores = {}
    for depth in (1, 3):
        engine = ScoringEngine(model, EngineSettings(96, 64, attention="mask", batches_in_flight=depth))
        scores[depth] = engine.score(groups, on_batch=lambda n, tokens, d=depth: progress[d].append((n, tokens)))
    assert len(progress[1]) > 3  # several batches
    assert progress[1] == progress[3]
    for one, three in zip(scores[1], scores[3], strict=True):
        assert one.sum_logprob.tolist() == three.sum_logprob.tolist()
        assert one.n_tokens.tolist() == three.n_tokens.tolist()


def test_one_batch_in_flight_by_default_until_a_gpu_measures_two():
    assert DEVICE_DEFAULTS["cuda"].batches_in_flight == 1  # docs/performance.md: the plan for the next lent GPU
    assert DEVICE_DEFAULTS["cpu"].batches_in_flight == 1  # a CPU runs each operation when it is called
    assert EngineSettings(batches_in_flight=3).for_device("cpu").batches_in_flight == 3
