"""The settings of `grape tools prepare` (torch-free: `grape --help` and pipeline checks stay fast)."""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.errors import GrapeError
from grape.tools.clean_turns import PAPER_ERROR_SIGNATURES

FORMATS = ("auto", "plain", "chat")
WEIGHTS = ("none", "key-tokens")


@dataclass
class PrepareSettings:
    answers: str | None = None  # BFCL's possible_answer file for the question file (irrelevance needs none)
    docs: str | None = None  # BFCL's multi_turn_func_doc folder; None: beside the question file
    # how tools reach the prompt: plain (the tools as Python signatures in the system turn, calls as Python),
    # chat (the model's chat template with tools=; rows then hold the prompt text, trained with --template raw),
    # auto (chat where the model's template renders tools, else plain; plain without a model)
    format: str = "auto"
    model: str | None = None  # the tokenizer for format auto/chat and for key-token weights
    template: str | None = None  # the template the rows are trained with; None: chat if the model has one, else paper
    eos: bool = True  # as in grape sft: the end marker is a response token (it gets a weight)
    weights: str = "none"  # none | key-tokens (TL-Training's PKT, written as loss_weights; needs a model)
    max_key_weight: float = 9.0  # the cap on the key tokens' weight
    clean_turns: bool = True  # MAE: a turn whose tool output matches an error signature is never a target
    error_signatures: list[str] = field(default_factory=lambda: list(PAPER_ERROR_SIGNATURES))
    no_call_response: str | None = None  # the completion where no call is right (None: such rows have none)
    trust_remote_code: bool = False


def check(settings: PrepareSettings) -> None:
    """Reject settings `prepare` cannot run with, in one line."""
    if settings.format not in FORMATS:
        raise GrapeError(f"format {settings.format!r}: use one of {', '.join(FORMATS)}")
    if settings.weights not in WEIGHTS:
        raise GrapeError(f"weights {settings.weights!r}: use one of {', '.join(WEIGHTS)}")
    if settings.weights == "key-tokens" and not settings.model:
        raise GrapeError("key-token weights are per token of a tokenizer: give --model")
    if settings.format == "chat" and not settings.model:
        raise GrapeError("format chat renders the model's chat template: give --model")
    if settings.max_key_weight < 1:
        raise GrapeError("max_key_weight must be at least 1")
