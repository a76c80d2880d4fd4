"""Preference pairs from a search tree: iTool's step-level pairs, and whole-answer pairs (its ablation).

**Step-level**: at every node with at least two children, the child of highest V (chosen) against the child of
lowest V (rejected), the first of equals in the order they were added. The pair is kept when

- V_chosen - V_rejected ≥ ``min_gap`` (0.1),
- V_chosen ≥ ``min_chosen`` (-0.3),
- the two steps' word overlap (grape.search.rewards.text_overlap) ≤ ``max_overlap`` (0.95),

each bound included (up to rounding: 1e-9), as the official code's ``get_perference_data`` keeps them. Its
prompt is the question followed by the node's partial answer (the prefix both steps share).

**Whole-answer**: per question, the judged answer of highest terminal reward against the one of lowest, under
the same three rules with the reward as the value.
"""

from __future__ import annotations

from dataclasses import dataclass

from grape.search.mcts import Rollout, Search
from grape.search.rewards import text_overlap
from grape.search.tree import Node

ROUNDING = 1e-9
# Why a candidate pair was left out (counted in the sidecar).
SMALL_GAP = "value gap below min_gap"
LOW_CHOSEN = "chosen value below min_chosen"
OVERLAP = "overlap above max_overlap"
NO_PAIR = "fewer than two judged answers"
BLANK = "a blank text"


@dataclass(frozen=True)
class PairRules:
    min_gap: float = 0.1
    min_chosen: float = -0.3
    max_overlap: float = 0.95


@dataclass(frozen=True)
class StepPair:
    parent: Node  # the node whose partial answer is the shared prefix
    chosen: Node
    rejected: Node


@dataclass(frozen=True)
class AnswerPair:
    chosen: Rollout
    rejected: Rollout


def pair_problem(chosen_value: float, rejected_value: float, chosen: str, rejected: str,
                 rules: PairRules) -> str | None:  # fmt: skip
    """Why the pair (chosen, rejected) is left out, or None when it is kept (a text of only whitespace is never
    trained on: `grape dpo` refuses it)."""
    if chosen_value - rejected_value < rules.min_gap - ROUNDING:
        return SMALL_GAP
    if chosen_value < rules.min_chosen - ROUNDING:
        return LOW_CHOSEN
    if text_overlap(chosen, rejected) > rules.max_overlap + ROUNDING:
        return OVERLAP
    if not chosen.strip() or not rejected.strip():
        return BLANK
    return None


def step_pairs(root: Node, rules: PairRules) -> tuple[list[StepPair], list[str]]:
    """(the kept step-level pairs, depth first; the reason of each node's pair left out)."""
    kept, left_out = [], []
    for node in root.walk():
        if len(node.children) < 2:
            continue
        chosen = max(node.children, key=lambda child: child.value)
        rejected = min(node.children, key=lambda child: child.value)
        problem = pair_problem(chosen.value, rejected.value, chosen.step, rejected.step, rules)
        if problem is None:
            kept.append(StepPair(node, chosen, rejected))
        else:
            left_out.append(problem)
    return kept, left_out


def answer_pair(search: Search, rules: PairRules) -> AnswerPair | str:
    """The whole-answer pair of a search, or why there is none."""
    if len(search.rollouts) < 2:
        return NO_PAIR
    chosen = max(search.rollouts, key=lambda rollout: rollout.reward)
    rejected = min(search.rollouts, key=lambda rollout: rollout.reward)
    problem = pair_problem(chosen.reward, rejected.reward, chosen.text, rejected.text, rules)
    return problem or AnswerPair(chosen, rejected)
