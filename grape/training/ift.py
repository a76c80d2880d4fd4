"""The model side of IFT (Intuitive Fine-Tuning, Hua et al. 2024): the temporal residual connection.

At each response position t the model's input embedding is (1 − λ)·E(y*_t) + λ·E(ŷ_t): the gold token y*_t
mixed with ŷ_t, the model's own greedy prediction of token t from the gold prefix. ŷ comes from a first
forward pass without gradient over the gold tokens; E is a frozen copy of the input embedding module as it
was when training started (Gemma's scaled embedding included), used for both passes, as the official code
does (TsinghuaC3I/Intuitive-Fine-Tuning, src/trainers.py: ``self.embed_tokens``). The live embedding then
trains only where it is tied to the LM head. Prompt positions keep their gold embedding. With λ = 0 the input
is E(y*) and, before the first step, the forward pass is ordinary SFT's.

The loss over the second pass's log-probs is grape.training.losses.ift_nll (the γ-discounted weights).
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from grape.models.logprobs import chunk_rows_for


def frozen_input_embeddings(model: Any) -> torch.nn.Module:
    """A frozen copy of ``model``'s input embedding module (no gradient, not among the model's parameters)."""
    return copy.deepcopy(model.get_input_embeddings()).requires_grad_(False)


def temporal_residual(gold: torch.Tensor, predicted: torch.Tensor, lam: float) -> torch.Tensor:
    """(1 − λ)·gold + λ·predicted.

    Args:
        gold, predicted: [R, W, H] embeddings of the gold tokens and of the tokens fed instead (the model's
            predictions at response positions, the gold tokens elsewhere, where the mix is the gold embedding).
        lam: λ in [0, 1].

    Returns:
        [R, W, H].
    """
    return (1 - lam) * gold + lam * predicted


@torch.no_grad()
def greedy_predictions(model: Any, inputs_embeds: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
    """[R, W] ids: at each position j whose label is not -100, argmax_v p(v | gold tokens < j); elsewhere the
    gold id. One forward pass of the decoder on ``inputs_embeds``, the LM head applied in chunks of rows to the
    states that predict a labelled token only (never the [tokens, vocab] logits of the whole batch).

    ``batch`` holds TRL's ``input_ids``, ``labels`` [R, W] and ``attention_mask`` or (padding-free)
    ``position_ids``. The argmax of the head's linear output is the argmax of the model's logits: soft-capping
    and logit scales are increasing maps.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    context = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}
    hidden = base.get_decoder()(inputs_embeds=inputs_embeds, use_cache=False, **context).last_hidden_state
    targets = batch["labels"][:, 1:] != -100  # [R, W - 1]: token j + 1 is predicted from the state at j
    states = hidden[:, :-1][targets]  # [N, H]
    head = base.get_output_embeddings()
    rows = chunk_rows_for(head.weight.shape[0])
    predicted = torch.cat([head(states[i : i + rows]).argmax(dim=-1) for i in range(0, len(states), rows)])
    ids = batch["input_ids"].clone()
    ids[:, 1:][targets] = predicted.to(ids.dtype)
    return ids


def temporal_residual_inputs(
    model: Any, embeddings: torch.nn.Module, batch: dict[str, Any], lam: float
) -> dict[str, Any]:
    """The model's keyword arguments for IFT's training pass: ``batch`` with ``input_ids`` replaced by the
    mixed ``inputs_embeds`` (λ = 0: the frozen embeddings of the gold tokens; no first pass is run)."""
    gold = embeddings(batch["input_ids"])
    if lam == 0:
        mixed = gold
    else:
        predicted = embeddings(greedy_predictions(model, gold, batch))
        mixed = temporal_residual(gold, predicted, lam)
    return {**{k: v for k, v in batch.items() if k != "input_ids"}, "inputs_embeds": mixed}


def read_inputs_through(model: Any, embeddings: torch.nn.Module) -> bool:
    """Make ``model`` read its inputs through IFT's frozen table E, where its own input table has moved away
    from E; return whether it did.

    IFT trains the network on E(tokens), never on the live input table. That table moves only where it is tied
    to the LM head and the head trains (full fine-tuning of Gemma or SmolLM2, whose heads are tied): then the
    saved model would read its inputs through the *trained head*, not the table it was trained on. On a
    pretrained model the drift is small; on a model trained from scratch it is everything (on Frozen Lake an IFT
    model scored 0% as saved and 80% reading through E, where SFT scored 30%; experiments/ift_frozenlake). So
    the head keeps its trained weights and the input table becomes E again, untied (``tie_word_embeddings``
    off, so that loading does not tie them back). A model whose table never moved (untied, or LoRA) is left as
    it is.
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    live, head = base.get_input_embeddings(), base.get_output_embeddings()
    if torch.equal(live.weight, embeddings.weight.to(live.weight.device)):
        return False
    if head is None or head.weight is not live.weight:
        raise RuntimeError("the input embeddings moved although IFT never reads them and they are not tied to the head")
    table = copy.deepcopy(embeddings).to(live.weight.device).requires_grad_(live.weight.requires_grad)
    base.set_input_embeddings(table)
    for config in {id(c): c for c in (base.config, base.config.get_text_config())}.values():
        config.tie_word_embeddings = False
    return True
