"""The `tool-call` verifier's judgement of one response, and TL-Training's reward from it.

An item (a row of the data) carries ``answer``: the gold calls (BFCL's ground truth, chat tool_calls, or
``[]`` when no call is right), and ``tools`` (or BFCL's ``function``): the tools the prompt offered. The
registry (grape.verification) turns the judgement into a `Verdict`; the PPO loop (grape.rl) takes
`irm_reward_of_text`.
"""

from __future__ import annotations

from typing import Any

from grape.tools.calls import GoldError, read_gold
from grape.tools.irm import CLIP, irm_reward
from grape.tools.judge import UNPARSABLE, Judgement, judge_calls, unknown
from grape.tools.parse import parse_calls
from grape.tools.tool_docs import ToolDocError, read_tools


def judge(response_text: str, item: dict[str, Any]) -> Judgement:
    """Right, wrong (with what is wrong), or unknown (no gold answer, or one that cannot be read)."""
    answer = item.get("answer")
    if answer is None:
        return unknown("no gold answer")
    try:
        gold = read_gold(answer)
        tools = read_tools(item.get("tools", item.get("function")))
    except (GoldError, ToolDocError) as exc:
        return unknown(f"unreadable gold answer or tools: {exc}")
    return judge_calls(parse_calls(response_text), gold, tools)


def irm_reward_of_text(response_text: str, item: dict[str, Any], clip: float = CLIP) -> tuple[float, str, str]:
    """(reward, kind, reason) of a response: TL-Training's error-category reward (irm.py); kind is ``right``,
    ``wrong``, or ``no_answer`` (no call could be read where one was due, or nothing to judge: reward 0)."""
    judgement = judge(response_text, item)
    reward = irm_reward(judgement, clip)
    if reward is None:
        return 0.0, "no_answer", judgement.reason
    kind = "right" if judgement.correct else "no_answer" if UNPARSABLE in judgement.problems else "wrong"
    return reward, kind, judgement.reason
