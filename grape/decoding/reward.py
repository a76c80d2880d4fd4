"""Reward models as the decoder uses them: r(prompt, response) for a batch of responses to one prompt.

A reward model is a causal LM with a one-output sequence-classification head (`grape reward-model` trains
one); its reward is the head on the hidden state of the sequence's **last real token**. The text it reads
is rendered by the one `Renderer` (grape.text) with the template the model was trained with, and tokenised
as a whole: a finished response gets the end marker (EOS or the chat template's end-of-turn) as in
training, an unfinished one (a prefix, a rollout cut at its length) does not.

`CachedRewardScorer` keeps a KV cache of the ids that every response of the prompt shares (the prompt and
the response decoded so far) and reads each batch's rows from a copy of it expanded to the batch: per step
only the new tokens of each row are computed. Which ids are shared is decided on the whole-text ids
themselves, never assumed: where the tokenizer re-splits the cached tail (a word that grows), the cache is
rebuilt (`rebuilds` counts it). `PlainRewardScorer` computes every row in full, the reference.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from grape.config import read_yaml
from grape.data.records import Messages
from grape.errors import GrapeError
from grape.models.kv_cache import cache_keyword, cache_of, shared_prefix_length
from grape.models.load import quiet_transformers, resolve_device, resolve_dtype, resolve_model_dir
from grape.text import Renderer

# Written by `grape reward-model` beside the model: its resolved settings, among them `template` and `eos`.
REWARD_SETTINGS = "grape-reward-model.yaml"


@dataclass
class RewardModel:
    model: Any  # a transformers sequence-classification model with one label, in eval mode
    tokenizer: Any
    template: str
    eos: bool
    identity: dict[str, Any] = field(default_factory=dict)


def load_reward_model(
    spec: str, template: str | None = None, eos: bool | None = None, dtype: str = "auto", device: str = "auto",
    trust_remote_code: bool = False,
) -> RewardModel:  # fmt: skip
    """Load a reward model; ``template``/``eos`` None: as it was trained (its grape-reward-model.yaml)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    quiet_transformers()
    target, identity = resolve_model_dir(spec, trust_remote_code)
    config = AutoConfig.from_pretrained(target, trust_remote_code=trust_remote_code)
    heads = [a for a in (config.architectures or []) if a.endswith("ForSequenceClassification")]
    if not heads or getattr(config, "num_labels", None) != 1:
        raise GrapeError(f"{spec}: not a reward model (a causal LM with a one-output sequence-classification "
                         "head): train one with `grape reward-model PAIRS -o DIR`")  # fmt: skip
    trained = read_yaml(Path(target) / REWARD_SETTINGS) if (Path(target) / REWARD_SETTINGS).is_file() else {}
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    tokenizer = AutoTokenizer.from_pretrained(target, trust_remote_code=trust_remote_code)
    model = AutoModelForSequenceClassification.from_pretrained(
        target, dtype=torch_dtype, trust_remote_code=trust_remote_code, attn_implementation="sdpa"
    )
    if not hasattr(model, "score"):
        raise GrapeError(f"{spec}: {type(model).__name__} has no `score` head; grape reads rewards from one")
    model.to(torch_device).eval()
    identity.update(architecture=type(model).__name__, dtype=str(torch_dtype).removeprefix("torch."))
    return RewardModel(
        model, tokenizer,
        template=template or trained.get("template") or "paper",
        eos=eos if eos is not None else trained.get("eos", True),
        identity=identity,
    )  # fmt: skip


@torch.inference_mode()
def last_token_rewards(model: Any, input_ids: torch.Tensor, lengths: torch.Tensor, cache: Any = None) -> torch.Tensor:
    """The reward of each row: the score head on the hidden state of its last real token.

    Args:
        model: a sequence-classification model (``model.score`` the head, its base under ``base_model_prefix``).
        input_ids: [B, L] rows right-padded (any id): causal attention keeps padding out of real tokens' states.
        lengths: [B] real tokens per row, each ≥ 1.
        cache: a KV cache of a prefix shared by all B rows (expanded to B rows), continued by ``input_ids``.

    Returns:
        [B] float32 rewards.
    """
    base = getattr(model, model.base_model_prefix)
    extra = {"use_cache": False} if cache is None else {cache_keyword(base): cache, "use_cache": True}
    hidden = base(input_ids=input_ids, **extra).last_hidden_state
    rows = torch.arange(input_ids.shape[0], device=hidden.device)
    return model.score(hidden[rows, lengths.to(hidden.device) - 1]).float().squeeze(-1)


class _RewardTexts:
    """The whole-text ids the reward model reads for each response to the current prompt."""

    def __init__(self, reward: RewardModel):
        self.reward = reward
        self.finished = Renderer(reward.tokenizer, reward.template, reward.eos)
        self.unfinished = Renderer(reward.tokenizer, reward.template, eos=False)
        self.device = next(reward.model.parameters()).device
        self.pad_id = reward.tokenizer.pad_token_id or 0
        self.prompt: str | Messages | None = None
        self.tokens_fed = 0
        self.rebuilds = 0

    def start(self, prompt: str | Messages) -> None:
        self.prompt = prompt

    def ids(self, responses: list[str], ended: list[bool]) -> list[list[int]]:
        out: list[list[int]] = [[] for _ in responses]
        for renderer, wanted in ((self.finished, True), (self.unfinished, False)):
            rows = [i for i, e in enumerate(ended) if e == wanted]
            if rows:
                for i, encoded in zip(rows, renderer.encode(self.prompt, [responses[i] for i in rows]), strict=True):
                    out[i] = encoded.prompt + encoded.response
        return out

    def padded(self, rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        width = max(len(r) for r in rows)
        ids = torch.tensor([r + [self.pad_id] * (width - len(r)) for r in rows], device=self.device)
        self.tokens_fed += sum(len(r) for r in rows)
        return ids, torch.tensor([len(r) for r in rows], device=self.device)


class PlainRewardScorer(_RewardTexts):
    """Every response computed in full: the reference for `CachedRewardScorer`."""

    def score(self, responses: list[str], ended: list[bool]) -> torch.Tensor:
        """[B] float32 rewards of ``responses`` (``ended``: finished, so read with the end marker)."""
        return last_token_rewards(self.reward.model, *self.padded(self.ids(responses, ended)))


class CachedRewardScorer(_RewardTexts):
    """Rewards of a batch of responses that share a growing prefix, computed from a cache of that prefix."""

    def start(self, prompt: str | Messages) -> None:
        super().start(prompt)
        self.cache, self.cache_ids = None, []

    @torch.inference_mode()
    def score(self, responses: list[str], ended: list[bool]) -> torch.Tensor:
        rows = self.ids(responses, ended)
        # Cache what every row shares, but leave each row at least one token: its reward is read there.
        keep = min(shared_prefix_length(rows), min(len(r) for r in rows) - 1)
        if len(self.cache_ids) > keep or rows[0][: len(self.cache_ids)] != self.cache_ids:
            self.cache, self.cache_ids = None, []
            self.rebuilds += 1
        if keep > len(self.cache_ids):
            self._extend(rows[0][len(self.cache_ids) : keep])
        cache = None
        if self.cache is not None:
            cache = copy.deepcopy(self.cache)
            cache.batch_repeat_interleave(len(rows))
        ids, lengths = self.padded([r[len(self.cache_ids) :] for r in rows])
        return last_token_rewards(self.reward.model, ids, lengths, cache)

    def _extend(self, ids: list[int]) -> None:
        base = getattr(self.reward.model, self.reward.model.base_model_prefix)
        out = base(input_ids=torch.tensor([ids], device=self.device), use_cache=True,
                   **{cache_keyword(base): self.cache})  # fmt: skip
        self.cache = cache_of(out)
        self.cache_ids = self.cache_ids + ids
        self.tokens_fed += len(ids)


class FunctionReward:
    """A reward computed by Python, ``function(prompt, response, finished) -> float`` (the Python API's)."""

    def __init__(self, function: Callable[[Any, str, bool], float]):
        self.function, self.prompt = function, None
        self.tokens_fed = self.rebuilds = 0

    def start(self, prompt: str | Messages) -> None:
        self.prompt = prompt

    def score(self, responses: list[str], ended: list[bool]) -> torch.Tensor:
        values = [float(self.function(self.prompt, r, e)) for r, e in zip(responses, ended, strict=True)]
        return torch.tensor(values, dtype=torch.float32)
