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

from grape.models.logprobs import head_settings, token_logprobs
from grape.rl.rollout import Rollouts, position_ids


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

    Both are read at the hidden state just before each response token; 0 on padding.
    """
    mask = rollouts.attention_mask
    trunk = _trunk(model)
    hidden = trunk(input_ids=rollouts.input_ids, attention_mask=mask, position_ids=position_ids(mask)).last_hidden_state
    width, length = rollouts.prompt_ids.shape[1], rollouts.response_ids.shape[1]
    states = hidden[:, width - 1 : width + length - 1]  # [B, R, H]: the state that emits response token t
    keep = rollouts.response_mask.bool()
    logprobs = torch.zeros(keep.shape, dtype=torch.float32, device=hidden.device)
    logprobs[keep] = token_logprobs(states[keep], targets=rollouts.response_ids[keep], **head_settings(model))
    if value_head is None:
        return logprobs, None
    values = value_head(states.float()).squeeze(-1) * rollouts.response_mask
    return logprobs, values


def plain_model(policy: Policy) -> Any:
    """The trained policy as a plain transformers model (LoRA folded into the weights)."""
    model = policy.model
    return model.merge_and_unload() if hasattr(model, "merge_and_unload") else model


def _trunk(model: Any) -> Any:
    """The decoder stack under the LM head (through a PeftModel, with its adapter layers in place)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return base.get_decoder()
