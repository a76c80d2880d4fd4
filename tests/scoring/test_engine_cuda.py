"""The engine on a GPU: same scores as the naive reference, no host round trips per candidate.
Skipped where torch sees no CUDA device (CI has none)."""

import pytest
import torch
from reference import naive_sum_logprob
from test_engine import random_groups
from tiny_models import tiny_gemma3

from grape.scoring.engine import EngineSettings, ScoringEngine

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_cuda_engine_matches_cpu_reference():
    cpu = tiny_gemma3(sliding_window=8)
    gpu = tiny_gemma3(sliding_window=8).cuda()
    groups = random_groups(cpu.config.vocab_size, 12, seed=21)
    results = ScoringEngine(gpu, EngineSettings(2048, 512)).score(groups)
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            reference = naive_sum_logprob(cpu, group.prompt, response)
            assert abs(reference - result.sum_logprob[k]) / len(response) < 1e-4


def test_cuda_bfloat16_engine_is_close():
    cpu = tiny_gemma3()
    gpu = tiny_gemma3().cuda().to(torch.bfloat16)
    groups = random_groups(cpu.config.vocab_size, 6, seed=22)
    results = ScoringEngine(gpu, EngineSettings(2048, 512)).score(groups)
    for group, result in zip(groups, results, strict=True):
        for k, response in enumerate(group.responses):
            assert abs(naive_sum_logprob(cpu, group.prompt, response) - result.sum_logprob[k]) / len(response) < 0.05
