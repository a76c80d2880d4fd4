"""One prompt in, one response out, by each of the four methods.

- ``greedy``: the argmax token of π_sft at every step.
- ``bon`` (best of n): n samples of π_sft; the one the reward model scores highest.
- ``args``: the top-k tokens of π_sft, each scored log π_sft(z | s) + α · r([s, z]) (no rollout).
- ``tq`` (Transfer Q*): the top-k tokens, each scored log π(z | s) + α · Q̂(s, z), Q̂ from rollouts of the
  baseline ρ_BL continuing [s, z] (grape.decoding.transfer for the arithmetic).

Every method continues the same ids: the generation prompt of the one `Renderer` (grape.text), then the
tokens chosen. Text is what the tokenizer decodes from them; a reward model reads that text rendered with its
own template (grape.decoding.reward). A response ends at an end token (EOS, the generation config's, the chat
template's end-of-turn marker), at a stop string (cut there), or after ``max_new_tokens``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import torch

from grape.data.records import Messages
from grape.decoding.language_model import CachedLM, PlainLM, pick
from grape.decoding.reward import CachedRewardScorer, FunctionReward, PlainRewardScorer, RewardModel
from grape.decoding.settings import DecodeSettings, rollout_length
from grape.decoding.transfer import choose, direct_q, indirect_q, step_scores
from grape.errors import GrapeError
from grape.models.load import LoadedModel
from grape.models.trained_template import template_for_model
from grape.text import Renderer
from grape.text.templates import stop_strings


@dataclass
class Step:
    """One guided step: the candidates in the prior's order, their log-prior, value (Q̂ or r) and the pick."""

    candidates: list[int]
    prior: list[float]
    values: list[float] | None
    chosen: int  # index into candidates


@dataclass
class Decoded:
    tokens: list[int]  # the response's tokens (an end token not included)
    text: str
    finish_reason: str  # stop (an end token or a stop string) | length
    sft_logprob: float | None  # Σ log π_sft of the tokens generated (None when π_sft did not propose them)
    reward: float | None = None  # r of the final response, when there is a reward model
    steps: list[Step] = field(default_factory=list)


class Decoder:
    """The models of a decoding run and its settings; `decode` answers one prompt."""

    def __init__(
        self,
        settings: DecodeSettings,
        policy: LoadedModel,
        baseline: LoadedModel | None = None,
        reward: RewardModel | Any = None,
        baseline_reward: RewardModel | Any = None,
    ):
        if settings.template is None:  # the one grape trained π_sft with (said in one line), else paper
            settings = replace(settings, template=template_for_model(settings.model, None))
        self.settings, self.tokenizer = settings, policy.tokenizer
        self.renderer = Renderer(policy.tokenizer, settings.template, eos=False)
        self.end_ids = end_token_ids(policy.tokenizer, [m for m in (policy, baseline) if m], settings.template)
        self.stops = settings.stop if settings.stop is not None else stop_strings(settings.template)
        self.sft = _language_model(policy, self.end_ids, settings.cache)
        self.baseline = _language_model(baseline, self.end_ids, settings.cache) if baseline else None
        self.reward = _scorer(reward, settings.cache)
        self.baseline_reward = _scorer(baseline_reward, settings.cache)
        self.device = policy.device
        parts = {"model": policy, "baseline": baseline, "reward": reward, "baseline_reward": baseline_reward}
        self.identity = {name: part.identity if hasattr(part, "identity") else repr(part)
                         for name, part in parts.items() if part is not None}  # fmt: skip

    def decode(self, prompt: str | Messages, seed: int = 0) -> Decoded:
        """The response to ``prompt``; ``seed`` drives every draw (samples, sampled rollouts, sampled choices)."""
        generator = torch.Generator(device=self.device).manual_seed(seed)
        ids = self.renderer.generation_ids(prompt)
        for scorer in (self.reward, self.baseline_reward):
            if scorer is not None:
                scorer.start(prompt)
        method = self.settings.method
        decoded = self._best_of_n(ids, generator) if method == "bon" else self._guided(ids, generator)
        if self.reward is not None and decoded.reward is None:
            decoded.reward = float(self.reward.score([decoded.text], [decoded.finish_reason == "stop"])[0])
        return decoded

    def _guided(self, ids: list[int], generator: torch.Generator) -> Decoded:
        """greedy, args and tq: a loop over tokens, each step choosing among the prior's top-k."""
        s = self.settings
        prior_lm = self.baseline if s.candidates == "baseline" else self.sft
        models = [prior_lm] + ([self.baseline] if s.method == "tq" and prior_lm is not self.baseline else [])
        for model in models:
            model.start(ids)
        k = 1 if s.method == "greedy" else s.top_k
        value = {"greedy": None, "args": self._args_values, "tq": self._q_values}[s.method]
        response, steps, logprob = [], [], 0.0
        for step in range(s.max_new_tokens):
            prior, candidates = prior_lm.next_logprobs().topk(k)
            values = value(response, candidates, generator) if value else None
            chosen = choose(step_scores(prior, values, s.alpha), s.choice, s.temperature, generator)
            token = int(candidates[chosen])
            logprob += float(prior[chosen])
            steps.append(Step(candidates.tolist(), prior.tolist(), values.tolist() if values is not None else None,
                              chosen))  # fmt: skip
            if token in self.end_ids:
                return Decoded(response, self.text(response, True)[0], "stop", self._sft_sum(logprob), steps=steps)
            response.append(token)
            text, stopped = self.text(response, False)
            if stopped:
                return Decoded(response, text, "stop", self._sft_sum(logprob), steps=steps)
            if step + 1 < s.max_new_tokens:
                for model in models:
                    model.append(token)
        return Decoded(response, self.text(response, False)[0].strip(), "length", self._sft_sum(logprob), steps=steps)

    def _args_values(self, response: list[int], candidates: torch.Tensor, generator: Any) -> torch.Tensor:
        """r([s, z]) of each candidate: the reward of the prefix it makes (finished if z ends the response)."""
        tokens = [response + [z] for z in candidates.tolist()]
        return self.reward.score(*self._texts(tokens, [z in self.end_ids for z in candidates.tolist()]))

    def _q_values(self, response: list[int], candidates: torch.Tensor, generator: Any) -> torch.Tensor:
        """Q̂(s, z) of each candidate from ``rollouts`` continuations of [s, z] by ρ_BL."""
        s = self.settings
        rows = self.baseline.continue_rows(candidates.repeat_interleave(s.rollouts), rollout_length(s),
                                           s.rollout_temperature, generator)  # fmt: skip
        texts, ended = self._texts([response + row for row in rows.tokens], rows.ended)
        rewards = self.reward.score(texts, ended).view(len(candidates), s.rollouts)
        if s.transfer == "direct":
            return direct_q(rewards)
        return indirect_q(rewards, self.baseline_reward.score(texts, ended).view_as(rewards), s.beta)

    def _best_of_n(self, ids: list[int], generator: torch.Generator) -> Decoded:
        s = self.settings
        self.sft.start(ids)
        first_logprobs = self.sft.next_logprobs()
        first = pick(first_logprobs.expand(s.n, -1), s.bon_temperature, generator)
        rows = self.sft.continue_rows(first, s.max_new_tokens - 1, s.bon_temperature, generator)
        texts, finished = self._texts(rows.tokens, rows.ended)
        rewards = self.reward.score(texts, finished)
        best = int(torch.argmax(rewards))
        tokens = [t for t in rows.tokens[best] if t not in self.end_ids]
        logprob = float(first_logprobs[first[best]]) + rows.logprobs[best]
        return Decoded(tokens, texts[best], "stop" if finished[best] else "length", logprob, float(rewards[best]))

    def _texts(self, rows: list[list[int]], ended: list[bool]) -> tuple[list[str], list[bool]]:
        """The response texts of ``rows`` and whether each is finished (an end token, or cut by a stop string)."""
        pairs = [self.text(tokens, end) for tokens, end in zip(rows, ended, strict=True)]
        return [text for text, _ in pairs], [end or stopped for end, (_, stopped) in zip(ended, pairs, strict=True)]

    def text(self, tokens: list[int], ended: bool) -> tuple[str, bool]:
        """(the response text of ``tokens``, whether a stop string cut it). Leading whitespace belongs to the
        prompt's template (``Answer: ``), so it is dropped; a finished response is stripped, as generation does."""
        text = self.tokenizer.decode([t for t in tokens if t not in self.end_ids], skip_special_tokens=True)
        cut = min((text.find(stop) for stop in self.stops if stop in text), default=-1)
        if cut >= 0:
            return text[:cut].strip(), True
        return (text.strip() if ended else text.lstrip()), False

    def _sft_sum(self, logprob: float) -> float | None:
        return logprob if self.settings.candidates == "sft" else None

    def work(self) -> dict[str, int]:
        """Token positions each model computed so far, and the reward caches' rebuilds."""
        parts = {"sft": self.sft, "baseline": self.baseline, "reward": self.reward, "baseline_reward":
                 self.baseline_reward}  # fmt: skip
        out = {f"{name}_tokens": part.tokens_fed for name, part in parts.items() if part is not None}
        out.update({f"{name}_cache_rebuilds": part.rebuilds for name, part in parts.items()
                    if name.endswith("reward") and part is not None})  # fmt: skip
        return out


def end_token_ids(tokenizer: Any, models: list[LoadedModel], template: str) -> set[int]:
    """Every token that ends a response: EOS, each model's generation-config EOS, the chat end-of-turn marker."""
    ids = {tokenizer.eos_token_id}
    for loaded in models:
        configured = getattr(getattr(loaded.model, "generation_config", None), "eos_token_id", None)
        ids.update(configured if isinstance(configured, list) else [configured])
    marker = Renderer(tokenizer, template, eos=True).end_text if template == "chat" else None
    if marker:
        marker_ids = tokenizer(marker, add_special_tokens=False)["input_ids"]
        if len(marker_ids) == 1:
            ids.add(marker_ids[0])
    ids.discard(None)
    if not ids:
        raise GrapeError("the tokenizer has no EOS token and the model no end token: a response could never end")
    return ids


def _language_model(loaded: LoadedModel, end_ids: set[int], cache: bool):
    if cache:
        return CachedLM(loaded.model, end_ids)
    pad = loaded.tokenizer.pad_token_id if loaded.tokenizer.pad_token_id is not None else min(end_ids)
    return PlainLM(loaded.model, end_ids, pad)


def _scorer(reward: RewardModel | Any, cache: bool):
    if reward is None:
        return None
    if isinstance(reward, RewardModel):
        return CachedRewardScorer(reward) if cache else PlainRewardScorer(reward)
    if callable(reward):
        return FunctionReward(reward)
    raise GrapeError(f"a reward must be a RewardModel or a function (prompt, response, finished) -> float, "
                     f"not {type(reward).__name__}")  # fmt: skip
