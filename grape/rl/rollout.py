"""Rollouts: one response per prompt sampled from the policy itself (temperature 1, no top-k, no top-p: ReFT),
or its greedy response (TL-Training's rollouts).

The batch layout every later pass uses::

    [pad … pad][prompt ids][response ids … EOS][pad … pad]
     left-padded to P        right-padded to R

Positions count real tokens only (``cumsum(attention_mask) − 1``), as transformers' ``generate`` does, so a
prompt's tokens sit at the same positions whatever its padding. The sampler is a plain loop over a KV cache:
it keeps the log-prob of each sampled token as it goes, which the training forward pass must reproduce (the
test of position ids and padding), and it never holds [steps, vocab] logits (Gemma's vocabulary: 262k).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from grape.models.kv_cache import cache_keyword, cache_of


@dataclass
class Rollouts:
    prompt_ids: torch.Tensor  # [B, P] left-padded
    prompt_mask: torch.Tensor  # [B, P] 1 on prompt tokens
    response_ids: torch.Tensor  # [B, R] right-padded after the end marker
    response_mask: torch.Tensor  # [B, R] float, 1 on response tokens (the end marker included)
    sample_logprobs: torch.Tensor  # [B, R] float32, log π(token) when it was sampled; 0 on padding

    @property
    def input_ids(self) -> torch.Tensor:
        return torch.cat([self.prompt_ids, self.response_ids], dim=1)

    @property
    def attention_mask(self) -> torch.Tensor:
        return torch.cat([self.prompt_mask, self.response_mask.to(self.prompt_mask.dtype)], dim=1)

    def select(self, rows: torch.Tensor) -> Rollouts:
        """The rollouts of ``rows`` (a mini-batch), same layout."""
        return Rollouts(*(t[rows] for t in (self.prompt_ids, self.prompt_mask, self.response_ids,
                                            self.response_mask, self.sample_logprobs)))  # fmt: skip


def left_padded(prompts: list[list[int]], pad_id: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """([B, P] ids, [B, P] mask) with each prompt right-aligned, P the longest prompt."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt) :] = torch.tensor(prompt, dtype=torch.long)
        mask[row, width - len(prompt) :] = 1
    return ids.to(device), mask.to(device)


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """[B, L] the index of each token among its row's real tokens (padding: 0), as ``generate`` counts."""
    return (attention_mask.long().cumsum(dim=-1) - 1).clamp(min=0)


@torch.no_grad()
def sample_rollouts(
    model,
    prompts: list[list[int]],
    *,
    max_new_tokens: int,
    stop_ids: list[int],
    pad_id: int,
    generator: torch.Generator,
    greedy: bool = False,
) -> Rollouts:
    """Sample one response per prompt from ``model`` (a causal LM, or a PeftModel around one); with ``greedy``,
    take the most likely token at each step instead (the log-probs kept are still the policy's own, at
    temperature 1: what the training pass computes).

    A row stops at its first token in ``stop_ids`` (kept, with its log-prob) or after ``max_new_tokens``.
    """
    device = next(model.parameters()).device
    ids, mask = left_padded(prompts, pad_id, device)
    stops = torch.tensor(stop_ids, dtype=torch.long, device=device)
    keyword = cache_keyword(model)
    out = model(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask), use_cache=True, logits_to_keep=1)
    cache, positions = cache_of(out), position_ids(mask)[:, -1:]
    done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
    tokens, logprobs, alive = [], [], []
    for _ in range(max_new_tokens):
        step_logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
        if greedy:
            token = step_logprobs.argmax(dim=-1)
        else:
            token = torch.multinomial(step_logprobs.exp(), 1, generator=generator).squeeze(1)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        tokens.append(token)
        logprobs.append(step_logprobs.gather(1, token[:, None]).squeeze(1) * ~done)
        alive.append(~done)
        done = done | torch.isin(token, stops)
        if bool(done.all()):
            break
        mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
        positions = positions + 1
        out = model(input_ids=token[:, None], attention_mask=mask, position_ids=positions, use_cache=True,
                    **{keyword: cache})  # fmt: skip
        cache = cache_of(out)
    return Rollouts(
        prompt_ids=ids,
        prompt_mask=mask[:, : ids.shape[1]].clone(),
        response_ids=torch.stack(tokens, dim=1),
        response_mask=torch.stack(alive, dim=1).float(),
        sample_logprobs=torch.stack(logprobs, dim=1),
    )
