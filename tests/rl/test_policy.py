"""The training forward pass against the sampler, and the reference against the base model."""

import copy

import pytest
import torch

from grape.models.load import load_model
from grape.rl.policy import build_policy, pack_rollouts, response_logprobs_and_values
from grape.rl.rollout import Rollouts, left_padded, position_ids, sample_rollouts
from grape.text import Renderer

QUESTIONS = ["What is 2 + 2?", "A train leaves at noon and travels 60 miles in an hour. How far in three hours?", "Hi"]


def _rollouts(loaded, seed=0, max_new_tokens=10, stop_ids=None):
    renderer = Renderer(loaded.tokenizer, "paper")
    prompts = [renderer.generation_ids(q) for q in QUESTIONS]
    return sample_rollouts(
        loaded.model,
        prompts,
        max_new_tokens=max_new_tokens,
        stop_ids=stop_ids or renderer.end_ids,
        pad_id=loaded.tokenizer.pad_token_id,
        generator=torch.Generator().manual_seed(seed),
    )


def test_left_padding_and_positions():
    ids, mask = left_padded([[5, 6, 7], [8]], pad_id=0, device=torch.device("cpu"))
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8]] and mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert position_ids(torch.cat([mask, torch.ones(2, 2, dtype=torch.long)], 1)).tolist() == [
        [0, 1, 2, 3, 4],
        [0, 0, 0, 1, 2],
    ]


@pytest.mark.parametrize("model_dir", ["tiny_llama_dir", "tiny_gemma_dir"])
def test_training_forward_pass_equals_the_sampling_pass_on_a_left_padded_batch(model_dir, request):
    loaded = load_model(str(request.getfixturevalue(model_dir)), dtype="float32", device="cpu")
    first = _rollouts(loaded)
    # stop row 0 at its 4th token: rows then end at different lengths, and the batch has padding after them
    stop = int(first.response_ids[0, 3])
    rollouts = _rollouts(loaded, stop_ids=[stop])
    assert rollouts.prompt_mask.min() == 0, "the prompts must differ in length (left padding)"
    lengths = rollouts.response_mask.sum(1)
    assert lengths[0] <= 4 and lengths.max() == rollouts.response_ids.shape[1] and lengths.min() < lengths.max()
    assert torch.equal(rollouts.response_ids[0, : int(lengths[0])], first.response_ids[0, : int(lengths[0])])
    logprobs, values = response_logprobs_and_values(loaded.model, None, rollouts)
    assert values is None
    keep = rollouts.response_mask.bool()
    assert torch.allclose(logprobs[keep], rollouts.sample_logprobs[keep], atol=2e-5), (
        (logprobs - rollouts.sample_logprobs).abs().max()
    )
    assert logprobs[~keep].abs().sum() == 0 and rollouts.sample_logprobs[~keep].abs().sum() == 0
    # the check can fail: a pass that lets the tokens see the padding gives other log-probs
    no_mask = copy.copy(rollouts)
    no_mask.prompt_mask = torch.ones_like(rollouts.prompt_mask)
    unmasked, _ = response_logprobs_and_values(loaded.model, None, no_mask)
    assert (unmasked - rollouts.sample_logprobs)[keep].abs().max() > 1e-3


def test_the_reference_with_the_adapter_disabled_equals_the_base_model(tiny_llama_dir):
    loaded = load_model(str(tiny_llama_dir), dtype="float32", device="cpu")
    base = copy.deepcopy(loaded.model)
    rollouts = _rollouts(loaded)
    policy = build_policy(loaded.model, lora_r=4)
    with torch.no_grad():  # a trained adapter: LoRA's B starts at zero, which would make this test vacuous
        for name, parameter in policy.model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.5)
    base_logprobs, _ = response_logprobs_and_values(base, None, rollouts)
    with torch.no_grad(), policy.reference() as reference:
        ref_logprobs, _ = response_logprobs_and_values(reference, None, rollouts)
    policy_logprobs, values = response_logprobs_and_values(policy.model, policy.value_head, rollouts)
    keep = rollouts.response_mask.bool()
    assert torch.allclose(ref_logprobs[keep], base_logprobs[keep], atol=1e-5)
    assert (policy_logprobs - base_logprobs)[keep].abs().max() > 1e-2  # the adapter is on outside the context
    assert values is not None and values.abs().sum() == 0  # the value head starts at zero


def test_full_fine_tuning_keeps_a_frozen_copy_as_the_reference(tiny_llama_dir):
    loaded = load_model(str(tiny_llama_dir), dtype="float32", device="cpu")
    policy = build_policy(loaded.model)
    assert policy.frozen_reference is not policy.model
    assert all(p.requires_grad for p in policy.model.parameters())
    assert not any(p.requires_grad for p in policy.frozen_reference.parameters())
    assert not policy.model.training  # dropout off


def test_rollouts_are_packed_without_their_padding():
    pad = 0
    rollouts = Rollouts(
        prompt_ids=torch.tensor([[5, 6, 7], [pad, pad, 8]]),
        prompt_mask=torch.tensor([[1, 1, 1], [0, 0, 1]]),
        response_ids=torch.tensor([[9, pad, pad], [10, 11, 12]]),
        response_mask=torch.tensor([[1.0, 0, 0], [1, 1, 1]]),
        sample_logprobs=torch.zeros(2, 3),
    )
    packed = pack_rollouts(rollouts)
    assert packed.ids.tolist() == [[5, 6, 7, 9, 8, 10, 11, 12]]
    assert packed.positions.tolist() == [[0, 1, 2, 3, 0, 1, 2, 3]]
    # row 0's one response token is emitted by its last prompt token (index 2); row 1's by indices 4, 5, 6
    assert packed.emitting.tolist() == [[2, 0, 0], [4, 5, 6]]
