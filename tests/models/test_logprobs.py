import math

import torch

from grape.models.logprobs import chunk_rows_for, token_logprobs


def test_token_logprobs_hand_computed():
    # Two rows, vocab 3, identity-like head: logits equal the hidden vectors.
    hidden = torch.tensor([[0.0, 0.0, 0.0], [1.0, 2.0, 3.0]])
    weight = torch.eye(3)
    out = token_logprobs(hidden, weight, torch.tensor([1, 2]), chunk_rows=1)
    assert math.isclose(out[0].item(), -math.log(3), rel_tol=1e-6)
    expected = 3 - math.log(math.exp(1) + math.exp(2) + math.exp(3))
    assert math.isclose(out[1].item(), expected, rel_tol=1e-6)


def test_token_logprobs_matches_full_log_softmax_with_softcap_bias_and_chunks():
    torch.manual_seed(0)
    hidden, weight, bias = torch.randn(37, 8), torch.randn(50, 8) * 3, torch.randn(50)
    targets = torch.randint(0, 50, (37,))
    logits = torch.nn.functional.linear(hidden, weight, bias) * 0.5
    logits = 4.0 * torch.tanh(logits / 4.0)
    expected = torch.log_softmax(logits, -1).gather(1, targets[:, None]).squeeze(1)
    for chunk in (1, 5, 37, 100):
        out = token_logprobs(hidden, weight, targets, bias=bias, softcap=4.0, scale=0.5, chunk_rows=chunk)
        assert out.dtype == torch.float32
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_bfloat16_inputs_reduce_in_float32():
    torch.manual_seed(1)
    hidden, weight = torch.randn(16, 32), torch.randn(1000, 32)
    targets = torch.randint(0, 1000, (16,))
    exact = token_logprobs(hidden, weight, targets)
    low = token_logprobs(hidden.bfloat16(), weight.bfloat16(), targets)
    assert low.dtype == torch.float32
    assert (low - exact).abs().max() < 0.5  # bf16 matmul noise only, no overflow in the reduction


def test_chunk_rows_for_bounds_memory():
    assert chunk_rows_for(262144, 256 * 2**20) == 170
    assert chunk_rows_for(10**9, 1) == 1
