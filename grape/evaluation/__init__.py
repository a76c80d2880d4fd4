"""Evaluate a model: batched greedy answers, a verifier, accuracy with a 95% interval.

`evaluate` is imported on first use: importing the settings must not load torch.
"""

from typing import Any

from grape.evaluation.metrics import wilson_interval
from grape.evaluation.settings import EvalSettings

__all__ = ["EvalSettings", "evaluate", "wilson_interval"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from grape.evaluation.evaluate import evaluate

        return evaluate
    raise AttributeError(f"module 'grape.evaluation' has no attribute {name!r}")
