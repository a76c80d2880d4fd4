"""GSM8K's natural pairs: 731 of the 1,319 test problems have a solution a person marked correct and one
marked wrong among four model solutions (../shared/data/gsm8k/example_model_solutions.jsonl).

`grape pairs` on these human labels must pair exactly those 731 problems, a correct solution against a wrong
one, and account for the other 588 by their reason. The fit column here is a stand-in (minus the length in
characters, so that longer means worse): scoring 5,276 solutions with even a tiny model takes far longer
than a test may (the real scoring path is covered by test_pairs_pipeline.py); which solution is chosen
within a problem is checked against the same stand-in, computed from the raw file.
"""

import json

from shared_data import shared_file

from grape.selection.pairs import pairs

KEYS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")


def _scores_rows(problems: list[dict]) -> list[dict]:
    rows = []
    for i, problem in enumerate(problems):
        for k, key in enumerate(KEYS):
            text = problem[key]["solution"]
            rows.append({"id": str(i), "candidate": k, "source": key, "n_tokens": len(text),
                         "mean_logprob": -len(text) / 100, "status": "scored", "row": i + 1,
                         "prompt": problem["question"], "messages": None, "response": text, "answer": None,
                         "correct": problem[key]["is_correct"]})  # fmt: skip
    return rows


def test_the_731_natural_pairs_of_gsm8k():
    path = shared_file("gsm8k/example_model_solutions.jsonl")
    problems = [json.loads(line) for line in path.read_text().splitlines()]
    made, summary = pairs(_scores_rows(problems))
    expected, all_wrong, all_right = {}, 0, 0
    for i, problem in enumerate(problems):
        right = [problem[k]["solution"] for k in KEYS if problem[k]["is_correct"]]
        wrong = [problem[k]["solution"] for k in KEYS if not problem[k]["is_correct"]]
        all_wrong += not right
        all_right += not wrong
        if right and wrong:
            expected[str(i)] = (min(right, key=len), max(wrong, key=len))  # best and worst stand-in fit
    assert len(expected) == 731 and len(made) == 731
    assert {p["id"]: (p["chosen"], p["rejected"]) for p in made} == expected
    assert all(p["chosen_correct"] is True and p["rejected_correct"] is False for p in made)
    assert (summary["chosen_from"], summary["rejected_from"]) == ("correct", "incorrect")
    assert summary["without_pair"] == {"no_chosen_eligible": all_wrong, "no_rejected_eligible": all_right,
                                       "margin_below_min": 0, "unreadable_row": 0}  # fmt: skip
    assert all_wrong + all_right == 1319 - 731
