"""The naive reference scorer the fast engine must agree with: one pair at a time, full forward,
full log_softmax over the vocabulary, gather. Deliberately simple; used only by tests."""

from __future__ import annotations

import torch


@torch.inference_mode()
def naive_sum_logprob(model, prompt: list[int], response: list[int]) -> float:
    ids = torch.tensor([prompt + response], device=model.device)
    logits = model(input_ids=ids).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    p = len(prompt)
    rows = torch.arange(p - 1, p - 1 + len(response), device=model.device)
    return float(logprobs[rows, ids[0, p:]].double().sum())
