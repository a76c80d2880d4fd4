"""TL-Training's error-category reward (IRM): a judgement's problems as one number for the PPO loop.

The official code's table (TL-Training, code/irm/dschat/rlhf/ppo_trainer.py, `test_answer_for_reward`),
first matching row wins:

| problems | reward |
| --- | --- |
| unparsable, or a hallucinated tool | -2 |
| a wrong tool | -1.5 |
| hallucinated and redundant and missing parameters | -1.8 |
| hallucinated and (redundant or missing) parameters | -1.3 |
| redundant and missing parameters | -1.0 |
| hallucinated parameters | -0.8 |
| redundant or missing parameters | -0.5 |
| the right names with a wrong value | -0.25 |
| exact | +1 |

The official code judges one call; with several, the problems of all calls count together. A missing or
an extra call, and a call where no call was right, are tool-choice errors: the wrong-tool row. The reward is
clipped to ±`CLIP` (the official trainer's ``clip_reward_value``); the table stays inside it.
"""

from __future__ import annotations

from grape.tools.judge import (
    CALLED_WHEN_NO_CALL,
    EXTRA_CALL,
    HALLUCINATED_PARAMETER,
    HALLUCINATED_TOOL,
    MISSING_CALL,
    MISSING_PARAMETER,
    REDUNDANT_PARAMETER,
    UNPARSABLE,
    WRONG_TOOL,
    WRONG_VALUE,
    Judgement,
)

CLIP = 5.0
EXACT = 1.0


def irm_reward(judgement: Judgement, clip: float = CLIP) -> float | None:
    """The reward of a judgement by the table above; None when there was nothing to judge against."""
    if judgement.correct is None:
        return None
    return max(-clip, min(clip, _table(set(judgement.problems))))


def _table(problems: set[str]) -> float:
    if not problems:
        return EXACT
    if problems & {UNPARSABLE, HALLUCINATED_TOOL}:
        return -2.0
    if problems & {WRONG_TOOL, MISSING_CALL, EXTRA_CALL, CALLED_WHEN_NO_CALL}:
        return -1.5
    hallucinated = HALLUCINATED_PARAMETER in problems
    redundant, missing = REDUNDANT_PARAMETER in problems, MISSING_PARAMETER in problems
    if hallucinated and redundant and missing:
        return -1.8
    if hallucinated and (redundant or missing):
        return -1.3
    if redundant and missing:
        return -1.0
    if hallucinated:
        return -0.8
    if redundant or missing:
        return -0.5
    if WRONG_VALUE in problems:
        return -0.25
    raise ValueError(f"no reward for the problems {sorted(problems)}")
