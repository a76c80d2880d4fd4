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
        for tile in (1, 7, 16, 50, 64):  # tiles of one entry, tiles that do not divide V, one tile, more than V
            out = token_logprobs(
                hidden, weight, targets, bias=bias, softcap=4.0, scale=0.5, chunk_rows=chunk, vocab_tile=tile
            )
            assert out.dtype == torch.float32
            torch.testing.assert_close(out, expected, rtol=0, atol=1e-5)


def test_the_running_log_sum_exp_survives_logits_far_apart():
    """A tile whose max is 200 nats above the first tile's: no overflow, no underflow to -inf."""
    hidden = torch.tensor([[1.0], [-1.0]])
    weight = torch.tensor([[-100.0], [0.0], [100.0], [101.0], [-300.0]])
    expected = torch.log_softmax(hidden @ weight.T, -1).gather(1, torch.tensor([[0], [4]])).squeeze(1)
    for tile in (1, 2, 3, 5):
        out = token_logprobs(hidden, weight, torch.tensor([0, 4]), vocab_tile=tile)
        torch.testing.assert_close(out, expected, rtol=1e-6, atol=1e-4)


def test_with_gradients_it_is_differentiable_and_equal():
    torch.manual_seed(2)
    hidden, weight = torch.randn(9, 8, requires_grad=True), torch.randn(30, 8)
    targets = torch.randint(0, 30, (9,))
    out = token_logprobs(hidden, weight, targets, softcap=3.0, chunk_rows=4)
    with torch.no_grad():
        torch.testing.assert_close(out, token_logprobs(hidden, weight, targets, softcap=3.0, vocab_tile=7))
    out.sum().backward()
    reference = hidden.detach().clone().requires_grad_(True)
    logits = 3.0 * torch.tanh((reference @ weight.T) / 3.0)
    torch.log_softmax(logits, -1).gather(1, targets[:, None]).sum().backward()
    torch.testing.assert_close(hidden.grad, reference.grad)


def test_bfloat16_inputs_reduce_in_float32():
    torch.manual_seed(1)
    hidden, weight = torch.randn(16, 32), torch.randn(1000, 32)
    targets = torch.randint(0, 1000, (16,))
    exact = token_logprobs(hidden, weight, targets)
    for tile in (64, 1000):
        low = token_logprobs(hidden.bfloat16(), weight.bfloat16(), targets, vocab_tile=tile)
        assert low.dtype == torch.float32
        # the error of bf16 logits only (the reduction is float32): against the log-softmax of those logits
        rounded = (hidden.bfloat16() @ weight.bfloat16().T).float()
        reference = torch.log_softmax(rounded, -1).gather(1, targets[:, None]).squeeze(1)
        assert (low - reference).abs().max() < 0.1
        assert (low - exact).abs().max() < 0.5  # bf16 matmul noise only, no overflow in the reduction


def test_chunk_rows_for_bounds_memory():
    assert chunk_rows_for(262144, 256 * 2**20) == 170
    assert chunk_rows_for(10**9, 1) == 1


def test_bfloat16_with_a_bias_and_softcap_applies_them_in_float32():
    """The lower-precision path with a head transform against the float32 log-softmax of the same bf16 logits,
    transformed in float32."""
    torch.manual_seed(3)
    hidden, weight, bias = torch.randn(12, 16).bfloat16(), torch.randn(300, 16).bfloat16(), torch.randn(300).bfloat16()
    targets = torch.randint(0, 300, (12,))
    logits = (hidden @ weight.T).float() + bias.float()
    logits = 5.0 * torch.tanh(logits * 0.7 / 5.0)
    expected = torch.log_softmax(logits, -1).gather(1, targets[:, None]).squeeze(1)
    for tile in (64, 300):
        out = token_logprobs(hidden, weight, targets, bias=bias, softcap=5.0, scale=0.7, vocab_tile=tile)
        torch.testing.assert_close(out, expected, rtol=0, atol=2e-2)  # the target logit's own dot product
