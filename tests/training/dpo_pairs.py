"""Preference pairs, fast settings and an independent log-prob reference shared by the dpo tests.

The first pair is the paper template's boundary case on Gemma's tokenizer: ``…Answer: `` before ``2`` keeps its
space as a token of the prompt (Gemma splits digits), before ``The`` the space merges into the response's first
token, so chosen's prompt is one token longer than rejected's.
"""

from __future__ import annotations

import torch

from grape.models.logprobs import head_settings, token_logprobs

PAIRS = [
    {"id": "a", "prompt": "What is 2 + 3?", "chosen": "2 + 3 = 5. The answer is 5.", "rejected": "The answer is 6."},
    {"id": "b", "prompt": "Name a primary colour.", "chosen": "Blue is a primary colour.", "rejected": "Green, maybe."},
    {"id": "c", "prompt": [{"role": "user", "content": "Say hello."}],
     "chosen": [{"role": "assistant", "content": "Hello!"}], "rejected": [{"role": "assistant", "content": "No."}]},
    {"id": "d", "prompt": "What is 10 times 10?", "chosen": "10 * 10 = 100.", "rejected": "It is 1000, I think."},
]  # fmt: skip
FAST = dict(batch_size=4, lr=1e-2, lr_scheduler="constant", precision="fp32", logging_steps=1, seed=0)


def texts(row: dict) -> tuple:
    """(prompt, chosen text, rejected text) of a row, read independently of grape's reader."""
    content = lambda v: v[0]["content"] if isinstance(v, list) else v  # noqa: E731
    return row["prompt"], content(row["chosen"]), content(row["rejected"])


def response_logprob_sum(model, prompt_ids: list[int], response_ids: list[int]) -> float:
    """Σ log p(response | prompt) with grape's per-token log-prob function on one unpadded forward pass."""
    with torch.no_grad():
        ids = torch.tensor([prompt_ids + response_ids])
        hidden = model.base_model(input_ids=ids).last_hidden_state[0]  # [T, H], after the final norm
        rows = hidden[len(prompt_ids) - 1 : len(prompt_ids) + len(response_ids) - 1]
        return float(token_logprobs(rows, targets=torch.tensor(response_ids), **head_settings(model)).sum())
