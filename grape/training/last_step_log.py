"""A trainer callback that logs the last step: transformers logs every ``logging_steps`` (and the first step),
so a run of 8 steps with ``logging_steps: 10`` logged only step 1, and its "last loss" was the first one. Every
trainer grape builds (sft, dpo, simpo, reward-model) takes this callback, so a run's last loss is its last step's.
"""

from __future__ import annotations

from transformers import TrainerCallback


class LogLastStep(TrainerCallback):
    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step >= state.max_steps and args.logging_strategy != "no":
            control.should_log = True
        return control
