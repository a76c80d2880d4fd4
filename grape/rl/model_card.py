"""The model card of a `grape rl` output: README.md in OUTDIR, in the Hugging Face layout (YAML metadata, then
Markdown): the warm-up model, the questions and the verifier's reward, the algorithm and its settings, how the
reward moved, and the command that made it.

grape.training.model_card writes sft's card from a selection's sidecar; an RL run has questions and a reward
instead, so its card is its own (stages do not import each other)."""

from __future__ import annotations

from typing import Any

import yaml

from grape.rl.settings import RLSettings

README = "README.md"
# The settings shown per algorithm; all of them are in grape-rl.yaml beside the card.
COMMON = ("model", "template", "eos", "verifier", "partial_reward", "max_prompt_tokens", "on_error", "max_new_tokens",
          "batch_size", "mini_batch_size", "micro_batch_size", "ppo_epochs", "epochs", "max_steps", "kl_coef",
          "clip_ratio", "aggregation", "lr", "max_grad_norm", "lora_r", "lora_alpha", "dtype", "seed")  # fmt: skip
SHOWN = {
    "ppo": (*COMMON, "gamma", "lam", "clip_value", "value_coef", "whiten_advantages"),
    "grpo": (*COMMON, "num_generations"),
}
ALGORITHM = {
    "ppo": "PPO with a value head on the policy's trunk, as ReFT (Luong et al., ACL 2024): one answer per question "
    "sampled at temperature 1, the reward on its last token, a per-token KL penalty against the warm-up model "
    "(β = `kl_coef`), GAE (γ = `gamma`, λ = `lam`), clipped policy and value losses.",
    "grpo": "GRPO (TRL's GRPOTrainer): `num_generations` answers per question sampled at temperature 1, each "
    "answer's advantage its reward minus its group's mean over the group's standard deviation, a clipped policy "
    "loss and a KL term against the warm-up model in the loss (β = `kl_coef`).",
}


def model_card(
    settings: RLSettings,
    metrics: dict[str, Any],
    data: str,
    n_questions: int,
    identity: dict[str, Any],
    command: str,
    n_skipped: int = 0,
) -> str:
    """The card's text; ``identity`` is the warm-up model's (grape.models.load.LoadedModel.identity);
    ``n_skipped``: rows left out (``on_error: skip``)."""
    header: dict[str, Any] = {"library_name": "transformers", "tags": ["grape", "rl", settings.algo, "reft"]}
    if identity.get("kind") == "hub":
        header["base_model"] = settings.model
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
             f"# {settings.model} reinforced with a verifier's reward ({settings.algo.upper()})", "",
             "## Warm-up model", "", f"`{settings.model}`" + _identity(identity)
             + " is the starting policy and the reference of the KL term.", "",
             "## Data and reward", "", *_reward(settings, data, n_questions, n_skipped), "",
             "## Training", "", ALGORITHM[settings.algo], "", *_settings_table(settings), "",
             "## Result", "", *_result(metrics, settings), "",
             "## Reproduce", "", "```bash", command, "```", "",
             "All settings, resolved: `grape-rl.yaml`; statistics per rollout batch: `rl-history.jsonl`; "
             "package versions: `grape-rl.json`.", ""]  # fmt: skip
    return "\n".join(lines)


def _identity(identity: dict[str, Any]) -> str:
    parts = [f"{identity[k]}" for k in ("model_type",) if identity.get(k)]
    if identity.get("n_parameters"):
        parts.append(f"{identity['n_parameters']:,} parameters")
    return f" ({', '.join(parts)})" if parts else ""


def _reward(settings: RLSettings, data: str, n_questions: int, n_skipped: int) -> list[str]:
    left_out = (f" Rows left out (`on_error: skip`): {n_skipped}, each listed with its reason in `grape-rl.json` "
                f"(a prompt over `max_prompt_tokens` {settings.max_prompt_tokens}, or no prompt or gold answer)."
                if n_skipped else "")  # fmt: skip
    return [f"`{data}`: {n_questions} questions (prompt column `{settings.prompt_column}`, gold answer column "
            f"`{settings.answer_column}`), rendered with template `{settings.template}`.{left_out}", "",
            f"Reward from the `{settings.verifier}` verifier: 1 for a right answer, {settings.partial_reward:g} for "
            "a wrong answer that was found (or a program that ran), 0 when none could be extracted."]  # fmt: skip


def _settings_table(settings: RLSettings) -> list[str]:
    rows = [(name, getattr(settings, name)) for name in SHOWN[settings.algo]]
    return ["| setting | value |", "| --- | --- |", *(f"| {k} | {v} |" for k, v in rows)]


def _result(metrics: dict[str, Any], settings: RLSettings) -> list[str]:
    def number(value: Any) -> str:
        return "none" if value is None else f"{value:.4f}"

    kl = "summed over each answer's tokens" if settings.algo == "ppo" else "TRL's mean per token"
    lines = [f"- rollout batches: {metrics['steps']}" + (f" (resumed from {metrics['resumed_from']})"
                                                         if metrics.get("resumed_from") else ""),
             f"- mean reward: {number(metrics['reward_first'])} in the first batch, "
             f"{number(metrics['reward_last'])} in the last",
             f"- right answers: {number(metrics['right_first'])} of the first batch, "
             f"{number(metrics['right_last'])} of the last",
             f"- KL to the warm-up model in the last batch ({kl}): {number(metrics['kl_last'])}",
             f"- seconds: {metrics['seconds']}",
             "- saved: the policy in " + settings.dtype + (" with LoRA merged into the weights"
                                                          if settings.lora_r else "")]  # fmt: skip
    return lines
