"""The left-padded KV cache's layer with room: decoding through it gives the logits decoding through
transformers' own layer gives (rows of different lengths, a row dropped midway), and a step writes into the
buffer it has instead of copying the cache."""

import copy

import torch

from grape.models.kv_cache import cache_of
from grape.models.load import load_model
from grape.models.padded_cache import RoomyLayer, mergeable, selected, trimmed, with_room


def _decode(model, cache, mask, tokens, steps, drop_after):
    """Greedy steps from a left-padded cache; the first row is dropped after ``drop_after`` steps."""
    logits_seen, positions, buffers = [], mask.sum(1, keepdim=True), []
    for step in range(steps):
        if step == drop_after:
            index = torch.tensor([1, 2])
            cache, mask = trimmed(selected(cache, index), mask[index])
            tokens, positions = tokens[index], positions[index]
        mask = torch.cat([mask, mask.new_ones(len(tokens), 1)], dim=1)
        out = model(input_ids=tokens, attention_mask=mask, position_ids=positions, past_key_values=cache,
                    use_cache=True)  # fmt: skip
        cache, positions = cache_of(out), positions + 1
        tokens = out.logits[:, -1].argmax(-1, keepdim=True)
        logits_seen.append(out.logits[:, -1])
        buffers.append(getattr(cache.layers[0], "buffers", (torch.empty(0),))[0].data_ptr())
    return logits_seen, buffers


@torch.inference_mode()
def test_a_layer_with_room_decodes_as_transformers_layer_does(tiny_smol_dir):
    model = load_model(str(tiny_smol_dir), "float32", "cpu").model
    prompts = [[5, 6, 7, 8, 9, 10, 11], [12, 13], [14, 15, 16, 17]]
    width = max(map(len, prompts))
    ids = torch.tensor([[0] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    out = model(input_ids=ids, attention_mask=mask, position_ids=(mask.cumsum(1) - 1).clamp(min=0), use_cache=True)
    plain = cache_of(out)
    roomy = with_room(copy.deepcopy(plain))
    assert all(type(layer) is RoomyLayer for layer in roomy.layers) and mergeable(roomy) and mergeable(plain)
    first = out.logits[:, -1].argmax(-1, keepdim=True)
    expected, _ = _decode(model, plain, mask, first, steps=8, drop_after=4)
    got, buffers = _decode(model, roomy, mask, first, steps=8, drop_after=4)
    for a, b in zip(got, expected, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
    # one buffer from the first step until the row is dropped, one after (room for 64 more columns each time)
    assert len(set(buffers[:4])) == 1 and len(set(buffers[4:])) == 1 and buffers[0] != buffers[4]
