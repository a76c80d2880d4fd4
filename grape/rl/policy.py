"""The policy with a value head on its trunk, the frozen reference, and their forward pass over rollouts.

The value head is one linear layer on the trunk's last hidden state (after the final norm): V(s_t) is read
from the same hidden state that predicts response token t, so one trunk pass gives both. The reference is
the warm-up model as it was: with LoRA the same weights with the adapter switched off (no second copy),
for full fine-tuning a frozen copy made before the first step.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from grape.errors import GrapeError
from grape.models.logprobs import head_settings, token_logprobs
from grape.models.segment_attention import packed_attention
from grape.rl.rollout import Rollouts


@dataclass
class Policy:
    model: Any  # a transformers causal LM, or a PeftModel around one (LoRA)
    value_head: torch.nn.Linear  # [H] -> [1], float32
    frozen_reference: Any | None  # full fine-tuning: the warm-up model; LoRA: None (the adapter is disabled)

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.model.parameters() if p.requires_grad] + list(self.value_head.parameters())

    @contextmanager
    def reference(self) -> Iterator[Any]:
        """The reference model, ready for a forward pass."""
        if self.frozen_reference is not None:
            yield self.frozen_reference
        else:
            with self.model.disable_adapter():
                yield self.model


def build_policy(model: Any, lora_r: int = 0, lora_alpha: int | None = None, lora_targets: str = "all-linear"):
    """Wrap a loaded causal LM (eval mode: dropout off for the whole run) as a `Policy`.

    The value head starts at zero, so the first values are 0 and the first advantages are the rewards'.
    """
    model.eval()
    hidden = model.config.get_text_config().hidden_size
    device = next(model.parameters()).device
    value_head = torch.nn.Linear(hidden, 1, device=device, dtype=torch.float32)
    torch.nn.init.zeros_(value_head.weight)
    torch.nn.init.zeros_(value_head.bias)
    if lora_r > 0:
        from peft import LoraConfig, get_peft_model

        config = LoraConfig(r=lora_r, lora_alpha=lora_alpha or 2 * lora_r, lora_dropout=0.0,
                            target_modules=lora_targets, task_type="CAUSAL_LM")  # fmt: skip
        return Policy(get_peft_model(model, config), value_head, None)
    reference = copy.deepcopy(model).requires_grad_(False)
    model.requires_grad_(True)
    return Policy(model, value_head, reference)


def response_logprobs_and_values(
    model: Any, value_head: torch.nn.Linear | None, rollouts: Rollouts
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One forward pass over prompt + response: ([B, R] log π of each response token, [B, R] values or None).

    Both are read at the hidden state just before each response token; 0 on padding. The rows go through the
    trunk packed into one row without their padding, each attending to itself alone (segment attention), so
    a batch costs its real tokens and the sum of its rows' attention, not B × (P + R) tokens and a padded
    [B, H, L, L] square kept for the backward pass (what put a batch of 2,000-token tool prompts over 23 GB).
    """
    packed = pack_rollouts(rollouts)
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    with packed_attention(base) as switched:
        if not switched:
            raise GrapeError(f"the RL forward pass needs a model loaded with SDPA attention, not "
                             f"{base.config._attn_implementation!r}")  # fmt: skip
        hidden = _trunk(model)(input_ids=packed.ids, position_ids=packed.positions).last_hidden_state[0]  # [N, H]
    states = hidden[packed.emitting]  # [B, R, H]: the state that emits response token t
    keep = rollouts.response_mask.bool()
    logprobs = torch.zeros(keep.shape, dtype=torch.float32, device=hidden.device)
    logprobs[keep] = token_logprobs(states[keep], targets=rollouts.response_ids[keep], **head_settings(model))
    if value_head is None:
        return logprobs, None
    values = value_head(states.float()).squeeze(-1) * rollouts.response_mask
    return logprobs, values


@dataclass
class PackedRollouts:
    ids: torch.Tensor  # [1, N] each row's real prompt and response tokens, one row after another
    positions: torch.Tensor  # [1, N] 0, 1, … within each row (a new example wherever it restarts at 0)
    emitting: torch.Tensor  # [B, R] index into N of the state that emits response token t (row start on padding)


def pack_rollouts(rollouts: Rollouts) -> PackedRollouts:
    """The rollouts without padding, as one packed row (the layout of `Rollouts`, whose prompts are
    left-padded and responses right-padded)."""
    prompt_lengths = rollouts.prompt_mask.sum(dim=1).long()  # [B]
    response_lengths = rollouts.response_mask.sum(dim=1).long()  # [B]
    keep = torch.cat([rollouts.prompt_mask.bool(), rollouts.response_mask.bool()], dim=1)  # [B, P + R]
    ids = rollouts.input_ids[keep]
    lengths = prompt_lengths + response_lengths
    starts = torch.cumsum(lengths, dim=0) - lengths  # [B]
    positions = torch.arange(ids.shape[0], device=ids.device) - torch.repeat_interleave(starts, lengths)
    t = torch.arange(rollouts.response_ids.shape[1], device=ids.device)[None, :]  # [1, R]
    emitting = starts[:, None] + prompt_lengths[:, None] - 1 + t
    emitting = torch.where(t < response_lengths[:, None], emitting, starts[:, None])
    return PackedRollouts(ids[None, :], positions[None, :], emitting)


def plain_model(policy: Policy) -> Any:
    """The trained policy as a plain transformers model (LoRA folded into the weights)."""
    model = policy.model
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _trunk(model: Any) -> Any:
    """The decoder stack under the LM head (through a PeftModel, with its adapter layers in place)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()
