"""The settings of `grape decode` (torch-free, so that `grape --help` stays fast).

Transfer Q* (Chakraborty et al., NeurIPS 2024) decodes with π*(z | s) ∝ π_sft(z | s) · exp(α · Q(s, z)):
at each step the top-k next tokens of π_sft are the candidates, Q̂ of each comes from a rollout of an
aligned *baseline* ρ_BL scored by a reward model r, and the step takes argmax log π_sft(z | s) + α · Q̂.
The defaults are those of the released code (k = 10, α = 1, 20 rollout tokens, 5 for indirect transfer,
one greedy rollout per candidate, greedy choice; sampling at 0.7; indirect weight exp(0.5 · Δr), β = 2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from grape.data.layout import Columns
from grape.errors import GrapeError
from grape.models.embedded import DEFAULT_TARGET

METHODS = ("greedy", "bon", "args", "tq")
TRANSFERS = ("direct", "indirect")
CHOICES = ("greedy", "sample")
CANDIDATE_SOURCES = ("sft", "baseline")
# Rollout length per transfer when `rollout_tokens` is None (the released code: 20 direct, 5 indirect).
ROLLOUT_TOKENS = {"direct": 20, "indirect": 5}


@dataclass
class DecodeSettings:
    method: str = "tq"  # greedy (π_sft) | bon (best of n samples of π_sft by r) | args (r of prefix + token) | tq
    model: str = DEFAULT_TARGET  # π_sft: the reference model whose top-k tokens are the candidates
    baseline: str | None = None  # ρ_BL (tq): an aligned causal LM on π_sft's tokenizer, e.g. `grape dpo`'s model
    reward: str | None = None  # r (bon, args, tq): a directory written by `grape reward-model` (or any 1-label RM)
    baseline_reward: str | None = None  # r_BL (indirect transfer): the reward ρ_BL was aligned to
    transfer: str = "direct"  # direct: Q̂ = mean r; indirect: Q̂ = mean exp((r − r_BL) / β) · r
    template: str | None = None  # π_sft's and ρ_BL's prompts; None: the one grape trained π_sft with, or paper
    reward_template: str | None = None  # None: the one the reward model was trained with (else `template`)
    reward_eos: bool | None = None  # None: as the reward model was trained (else True)
    top_k: int = 10  # candidates per step (args, tq)
    alpha: float = 1.0  # weight of Q̂ (tq) or of r (args) against log π_sft
    beta: float = 2.0  # indirect transfer's temperature (the released code's exp(0.5 · Δr))
    rollout_tokens: int | None = None  # tokens after the candidate; None: 20 (direct) or 5 (indirect)
    rollouts: int = 1  # rollouts per candidate (more than one needs rollout_temperature > 0)
    rollout_temperature: float = 0.0  # 0: greedy rollouts (the released code)
    choice: str = "greedy"  # greedy: argmax of the scores; sample: softmax(scores / temperature)
    temperature: float = 0.7  # of choice: sample
    candidates: str = "sft"  # sft (the paper) | baseline (the released code: top-k and prior from ρ_BL)
    n: int = 10  # bon: samples per prompt
    bon_temperature: float = 1.0  # bon: the sampling temperature of π_sft
    max_new_tokens: int = 128
    stop: list[str] | None = None  # None: "\nQuestion:" with the paper and few-shot templates, nothing otherwise
    cache: bool = True  # False: the plain loop that recomputes every prefix (for comparison; same results)
    trace: bool = False  # write each step's candidates, prior, Q̂ and choice into the output
    seed: int = 0
    limit: int | None = None  # decode the first N prompts only
    columns: Columns = field(default_factory=Columns)
    on_error: str = "fail"  # fail | skip: a prompt the template cannot render is kept with status skipped:<reason>
    dtype: str = "auto"
    device: str = "auto"
    trust_remote_code: bool = False


def rollout_length(settings: DecodeSettings) -> int:
    if settings.rollout_tokens is not None:
        return settings.rollout_tokens
    return ROLLOUT_TOKENS[settings.transfer]


def check(settings: DecodeSettings) -> None:
    """Reject settings that cannot run, naming the setting."""
    _one_of("method", settings.method, METHODS)
    _one_of("transfer", settings.transfer, TRANSFERS)
    _one_of("choice", settings.choice, CHOICES)
    _one_of("candidates", settings.candidates, CANDIDATE_SOURCES)
    _one_of("on_error", settings.on_error, ("fail", "skip"))
    for name in ("top_k", "rollouts", "n", "max_new_tokens"):
        if getattr(settings, name) < 1:
            raise GrapeError(f"{name} must be at least 1")
    if settings.rollout_tokens is not None and settings.rollout_tokens < 0:
        raise GrapeError("rollout_tokens must be 0 or more")
    if settings.limit is not None and settings.limit < 1:
        raise GrapeError("limit must be at least 1")
    for name in ("beta", "temperature", "bon_temperature"):
        if getattr(settings, name) <= 0:
            raise GrapeError(f"{name} must be positive")
    if settings.rollout_temperature < 0:
        raise GrapeError("rollout_temperature must be 0 (greedy) or positive")
    if settings.rollouts > 1 and settings.rollout_temperature == 0:
        raise GrapeError("rollouts > 1 with greedy rollouts (rollout_temperature 0) repeats one rollout: "
                         "set rollout_temperature > 0")  # fmt: skip
    if settings.method in ("bon", "args", "tq") and not settings.reward:
        raise GrapeError(f"method {settings.method} needs a reward model: give --reward DIR (grape reward-model)")
    if settings.method == "tq" and not settings.baseline:
        raise GrapeError("method tq needs the aligned baseline ρ_BL: give --baseline MODEL (e.g. a grape dpo model)")
    if settings.method == "tq" and settings.transfer == "indirect" and not settings.baseline_reward:
        raise GrapeError("indirect transfer needs r_BL, the reward the baseline was aligned to: give --baseline-reward")
    if settings.candidates == "baseline" and settings.method != "tq":
        raise GrapeError("candidates: baseline takes top-k from ρ_BL, which only method tq has")


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise GrapeError(f"unknown {name} '{value}': use {', '.join(allowed)}")
