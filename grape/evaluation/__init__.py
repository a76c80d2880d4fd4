"""Evaluate a model: batched greedy answers, a verifier, accuracy with a 95% interval; or hand it to
lm-evaluation-harness for published-style numbers (`run_lm_eval`, grape.evaluation.harness).

`evaluate` and `run_lm_eval` are imported on first use: importing the settings must not load torch.
"""

from typing import Any

from grape.evaluation.metrics import wilson_interval
from grape.evaluation.settings import EvalSettings, HarnessSettings

__all__ = ["EvalSettings", "HarnessSettings", "evaluate", "run_lm_eval", "wilson_interval"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from grape.evaluation.evaluate import evaluate

        return evaluate
    if name == "run_lm_eval":
        from grape.evaluation.harness import run_lm_eval

        return run_lm_eval
    raise AttributeError(f"module 'grape.evaluation' has no attribute {name!r}")
