"""The paper's other terminal reward: the policy grades an answer against the gold one itself, A to D.

The model is shown the question, the gold calls and the answer, and asked for one of four grades. Its grade
distribution is read without sampling: the log-probability of each option's text, ``(A)`` to ``(D)``, as the
answer to that prompt (the whole text's tokens, grape.text.Renderer), normalised over the four. The reward is
the official code's weighting of the grades, 1·p(A) + 0.1·p(B) − 1·p(C) − 2·p(D), in [−2, 1] (the official
code reads the grades from the top log-probs of a few sampled tokens and divides by 4).
"""

from __future__ import annotations

from typing import Any

import torch

from grape.models.load import LoadedModel
from grape.text import Renderer
from grape.tools.calls import read_gold
from grape.tools.render import call_text

OPTIONS = ("(A)", "(B)", "(C)", "(D)")
WEIGHTS = (1.0, 0.1, -1.0, -2.0)
QUESTION = (
    "Grade an answer to a function-calling request against the reference answer.\n\n"
    "Request: {question}\n\nReference answer: {gold}\n\nAnswer to grade: {answer}\n\n"
    "Check the function names, the number of arguments, their names and their values.\n"
    "(A) Excellent: right in every respect, or a correct beginning of the reference.\n"
    "(B) Acceptable: right in most respects, with small differences.\n"
    "(C) Fair: partly right, with real mistakes.\n"
    "(D) Poor: wrong in most or all respects.\n"
    "Reply with the option only."
)


class SelfEvalJudge:
    def __init__(self, loaded: LoadedModel, template: str):
        self.loaded = loaded
        self.renderer = Renderer(loaded.tokenizer, template, eos=False)

    def grades(self, answer_text: str, row: dict[str, Any]) -> list[float]:
        """The model's probability of each grade A-D for this answer."""
        prompt = [{"role": "user", "content": QUESTION.format(question=request_text(row["prompt"]),
                                                              gold=gold_text(row), answer=answer_text)}]  # fmt: skip
        model = self.loaded.model
        logps = []
        with torch.inference_mode():
            for encoded in self.renderer.encode(prompt, list(OPTIONS)):
                ids = torch.tensor([encoded.prompt + encoded.response], device=model.device)
                logits = model(input_ids=ids).logits[0, len(encoded.prompt) - 1 : -1].float()
                targets = ids[0, len(encoded.prompt) :]
                logps.append(torch.log_softmax(logits, -1).gather(-1, targets[:, None]).sum())
        return torch.softmax(torch.stack(logps), dim=0).tolist()

    def __call__(self, answer_text: str, row: dict[str, Any]) -> float:
        return sum(w * p for w, p in zip(WEIGHTS, self.grades(answer_text, row), strict=True))


def request_text(prompt: Any) -> str:
    """The user's request: a string prompt as it is, else the last user message (the tools stay out)."""
    if isinstance(prompt, str):
        return prompt
    users = [m["content"] for m in prompt if m.get("role") == "user"]
    return users[-1] if users else ""


def gold_text(row: dict[str, Any]) -> str:
    """The gold calls as Python (each argument's first accepted value), or that no call is right."""
    gold = read_gold(row["answer"])
    if not gold:
        return "(no function call: none of the functions fits the request)"
    return call_text([g.canonical() for g in gold])
