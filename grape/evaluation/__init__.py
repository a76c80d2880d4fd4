"""Evaluate a model: batched greedy answers, a verifier, accuracy with a 95% interval."""

from grape.evaluation.evaluate import EvalSettings, evaluate
from grape.evaluation.metrics import wilson_interval

__all__ = ["EvalSettings", "evaluate", "wilson_interval"]
