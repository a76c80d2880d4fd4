"""The two baselines the engine is measured against, as people score pairs without it.

  naive   one pair at a time, full forward, full log_softmax over the vocabulary, gather
          (what IFD / Superfiltering-style scripts do);
  padded  pairs right-padded into batches, full logits for every position, log_softmax, gather
          (what reference-log-prob passes in DPO trainers do); no prefix sharing.
Both return the sum of log-probabilities of each candidate's response tokens, [group][candidate].
"""

from __future__ import annotations

import torch

from grape.scoring.packing import TokenGroup


@torch.inference_mode()
def naive_scores(model, groups: list[TokenGroup]) -> list[list[float]]:
    out = []
    for group in groups:
        sums = []
        for response in group.responses:
            ids = torch.tensor([group.prompt + response], device=model.device)
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
            rows = torch.arange(len(group.prompt) - 1, ids.shape[1] - 1, device=model.device)
            sums.append(float(logprobs[rows, ids[0, len(group.prompt) :]].sum()))
        out.append(sums)
    return out


@torch.inference_mode()
def padded_scores(model, groups: list[TokenGroup], batch_size: int) -> list[list[float]]:
    pairs = [(g, k) for g in range(len(groups)) for k in range(len(groups[g].responses))]
    out = [[0.0] * len(g.responses) for g in groups]
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        seqs = [groups[g].prompt + groups[g].responses[k] for g, k in chunk]
        width = max(map(len, seqs))
        ids = torch.zeros(len(seqs), width, dtype=torch.long)
        mask = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, seq in enumerate(seqs):
            ids[i, : len(seq)], mask[i, : len(seq)] = torch.tensor(seq), 1
        ids, mask = ids.to(model.device), mask.to(model.device)
        logprobs = torch.log_softmax(model(input_ids=ids, attention_mask=mask).logits.float(), dim=-1)
        for i, (g, k) in enumerate(chunk):
            p, r = len(groups[g].prompt), len(groups[g].responses[k])
            rows = torch.arange(p - 1, p - 1 + r, device=model.device)
            out[g][k] = float(logprobs[i, rows, ids[i, p : p + r]].sum())
    return out
