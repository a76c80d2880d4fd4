"""`grape itool mcts`: pairs whose ids are the whole text's tokens of what the policy continued, every question
accounted for, reproducible, readable by `grape dpo`; the self-evaluation judge."""

import pytest
import torch
from reference import naive_sum_logprob

from grape.cli import main
from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError, InputError
from grape.search.mcts import Rollout
from grape.search.pairs import AnswerPair, StepPair
from grape.search.run import answer_pair_row, mcts, step_pair_row
from grape.search.self_eval import OPTIONS, QUESTION, WEIGHTS, SelfEvalJudge, gold_text
from grape.search.tree import Node
from grape.text import Renderer
from grape.training.preference import read_pairs, tokenise_pairs

FAST = dict(simulations=2, samples=2, max_new_tokens=5, min_gap=0.0, min_chosen=-100.0)
PROMPT = [{"role": "system", "content": "def get_weather(city: string): ..."},
          {"role": "user", "content": "Weather in Paris?"}]  # fmt: skip
ROW = {"id": "q", "prompt": PROMPT, "answer": [{"get_weather": {"city": ["Paris"]}}]}


def _raw_ids(tokenizer, pair_row):
    """The ids `grape dpo` trains for a pair row, as the pairs' sidecar says to render it (raw, no eos)."""
    (pair,) = tokenise_pairs(read_pairs([pair_row]), Renderer(tokenizer, "raw", eos=False), 10_000)
    return pair.prompt_ids + pair.chosen_ids, pair.prompt_ids + pair.rejected_ids


def test_a_step_pair_trains_the_whole_texts_tokens_of_prompt_prefix_and_step(tiny_smol):
    tokenizer = tiny_smol.tokenizer
    root = Node()
    parent = root.add("get_weather(city=", 1.0, 0.5)
    chosen, rejected = parent.add("'Paris')", 1.0, 1.0, finished=True), parent.add("'Rome', unit=", 1.0, -1.0)
    text = Renderer(tokenizer, "chat").prompt_text(PROMPT)
    row = step_pair_row("q", text, StepPair(parent, chosen, rejected), "<|im_end|>", ROW)
    assert (row["prompt"], row["chosen"], row["rejected"]) == (text + "get_weather(city=", "'Paris')<|im_end|>",
                                                               "'Rome', unit=")  # fmt: skip
    assert (row["id"], row["depth"], row["margin"]) == ("q@0", 1, 2.0)
    chosen_ids, rejected_ids = _raw_ids(tokenizer, row)
    assert chosen_ids == tokenizer(text + "get_weather(city='Paris')<|im_end|>")["input_ids"]
    assert rejected_ids == tokenizer(text + "get_weather(city='Rome', unit=")["input_ids"]  # no end marker
    # a finished answer is trained on exactly the ids the chat template gives prompt + answer + end of turn
    chat = Renderer(tokenizer, "chat", eos=True).encode(PROMPT, ["get_weather(city='Paris')"])[0]
    assert chosen_ids == chat.prompt + chat.response


def test_a_whole_answer_pair_starts_after_the_prompt(tiny_smol):
    tokenizer = tiny_smol.tokenizer
    text = Renderer(tokenizer, "chat").prompt_text(PROMPT)
    leaf = Node()
    pair = AnswerPair(Rollout("get_weather(city='Paris')", True, 1.0, leaf), Rollout("get_time(", False, -1.0, leaf))
    row = answer_pair_row("q", text, pair, "<|im_end|>", ROW)
    assert (row["prompt"], row["chosen"], row["rejected"], row["level"]) == (
        text,
        "get_weather(city='Paris')<|im_end|>",
        "get_time(",
        "answer",
    )
    chat = Renderer(tokenizer, "chat", eos=True).encode(PROMPT, ["get_weather(city='Paris')"])[0]
    assert _raw_ids(tokenizer, row)[0] == chat.prompt + chat.response


def test_the_stage_accounts_for_every_question_and_is_reproducible(tool_rows, tiny_smol, tmp_path):
    rows = read_table_rows(tool_rows)[2:4]  # a call and a text answer
    source = write_rows(rows, tmp_path / "rows.jsonl")
    (tmp_path / "rows.jsonl.meta.json").write_text((tool_rows.parent / "rows.jsonl.meta.json").read_text())
    made, summary = mcts(source, tmp_path / "pairs.jsonl", **FAST)
    assert made and made == read_table_rows(tmp_path / "pairs.jsonl")
    meta = read_sidecar(tmp_path / "pairs.jsonl")
    assert meta["score_settings"] == {"model": meta["settings"]["model"], "template": "raw", "eos": False}
    assert meta["settings"]["template"] == "chat"  # from the rows' sidecar
    paired = {r["question"] for r in made}
    unpaired = {e["id"] for e in meta["questions_without_pair"]}
    assert paired | unpaired == {r["id"] for r in rows} and not paired & unpaired
    assert summary["pairs"] == len(made) and summary["questions"] == 2
    # every judged answer is counted by its reward: one per simulation and question, the judge's own values
    assert sum(summary["judged_answers"].values()) == 2 * FAST["simulations"]
    assert set(summary["judged_answers"]) <= {"1", "-1", "0"}  # the tool-call verifier's
    for entry in meta["questions_without_pair"]:
        assert len(entry["rewards"]) == FAST["simulations"]
    prompts = {r["id"]: Renderer(tiny_smol.tokenizer, "chat").prompt_text(r["prompt"]) for r in rows}
    for pair in made:
        assert pair["prompt"].startswith(prompts[pair["question"]]) and pair["level"] == "step"
        assert pair["chosen"] != pair["rejected"] and pair["margin"] == pair["chosen_value"] - pair["rejected_value"]
    tokenise_pairs(read_pairs(made), Renderer(tiny_smol.tokenizer, "raw", eos=False), 10_000)  # dpo reads them
    again, _ = mcts(source, None, **FAST, questions_at_once=1)
    assert again == made  # seeded per question and continuation: the same searched one at a time
    answers, _ = mcts(rows[:1], None, model=meta["settings"]["model"], **{**FAST, "pairs": "answer"})
    assert all(r["level"] == "answer" for r in answers) and len({r["question"] for r in answers}) == len(answers)


def test_the_command_line_and_its_errors(tool_rows, tmp_path):
    rows = read_table_rows(tool_rows)[:1]
    source = write_rows(rows, tmp_path / "one.jsonl")
    model = read_sidecar(tool_rows)["score_settings"]["model"]
    config = tmp_path / "mcts.yaml"
    config.write_text("simulations: 1\nsamples: 1\nmax_new_tokens: 4\njudge: irm\n")
    output = tmp_path / "pairs.jsonl"
    assert main(["itool", "mcts", str(source), "-o", str(output), "--model", model, "--config", str(config),
                 "--seed", "3"]) == 0  # fmt: skip
    settings = read_sidecar(output)["settings"]
    assert (settings["judge"], settings["seed"], settings["simulations"], settings["template"]) == ("irm", 3, 1, "chat")
    with pytest.raises(GrapeError, match="judge 'oracle': use one of tool-call, irm, self-eval"):
        mcts(source, None, judge="oracle", model=model)
    with pytest.raises(GrapeError, match="no model to search with"):
        mcts(source, None)
    keyless = write_rows([{**rows[0], "answer": None}], tmp_path / "keyless.jsonl")
    with pytest.raises(InputError, match=r"keyless.jsonl.*row 1.*answer.*missing"):
        mcts(keyless, None, model=model, **FAST)


def test_self_evaluation_is_the_models_grade_distribution_weighted(tiny_smol):
    judge = SelfEvalJudge(tiny_smol, "chat")
    answer = "get_weather(city='Rome')"
    grades = judge.grades(answer, ROW)
    assert gold_text(ROW) == "get_weather(city='Paris')" and gold_text({"answer": []}).startswith("(no function")
    assert sum(grades) == pytest.approx(1.0)
    renderer = Renderer(tiny_smol.tokenizer, "chat", eos=False)
    content = QUESTION.format(question="Weather in Paris?", gold="get_weather(city='Paris')", answer=answer)
    judge_prompt = [{"role": "user", "content": content}]
    logps = []
    for option in OPTIONS:
        prompt_ids = renderer.generation_ids(judge_prompt)
        whole = tiny_smol.tokenizer(renderer.prompt_text(judge_prompt) + option)["input_ids"]
        logps.append(naive_sum_logprob(tiny_smol.model, whole[: len(prompt_ids)], whole[len(prompt_ids) :]))
    expected = torch.softmax(torch.tensor(logps, dtype=torch.float64), 0).tolist()
    assert grades == pytest.approx(expected, abs=1e-5)
    assert judge(answer, ROW) == pytest.approx(sum(w * p for w, p in zip(WEIGHTS, expected, strict=True)), abs=1e-5)


class SessionEnded(Exception):
    """Stands for the signal that ends a session mid-run."""


def test_a_killed_search_resumes_where_it_stopped_with_the_same_pairs(tool_rows, tmp_path, monkeypatch):
    """Each question's search is kept as it is found; a re-run searches only the rest and writes what an
    uninterrupted run writes; searches under other settings (another seed) are not reused."""
    import grape.search.run as run
    from grape.search.trees_file import trees_path

    rows = read_table_rows(tool_rows)[2:4]
    source = write_rows(rows, tmp_path / "rows.jsonl")
    (tmp_path / "rows.jsonl.meta.json").write_text((tool_rows.parent / "rows.jsonl.meta.json").read_text())
    whole, _ = mcts(source, tmp_path / "whole.jsonl", **FAST)
    searched_ids, real_searches = [], run.searches

    def killed_after_the_first(work, *args):
        searched_ids.extend(row["id"] for _, row, _ in work)
        for count, found in enumerate(real_searches(work, *args)):
            if count == 1:
                raise SessionEnded
            yield found

    monkeypatch.setattr(run, "searches", killed_after_the_first)
    output = tmp_path / "pairs.jsonl"
    trees = trees_path(output, None)
    with pytest.raises(SessionEnded):  # one question at a time: the first is searched, then the session ends
        mcts(source, output, **FAST, questions_at_once=1)
    assert not output.exists() and len(trees.read_text().splitlines()) == 1
    searched_ids.clear()
    resumed, summary = mcts(source, output, **FAST)
    assert searched_ids == [rows[1]["id"]]  # the first question's search was kept
    assert resumed == whole == read_table_rows(output) and summary["questions"] == 2
    assert summary["questions_from_kept_trees"] == 1 and len(trees.read_text().splitlines()) == 2  # and stays
    searched_ids.clear()
    with pytest.raises(SessionEnded):
        mcts(source, output, **{**FAST, "seed": 7})
    assert searched_ids == [r["id"] for r in rows]  # the kept searches of seed 0 are not seed 7's


def test_other_pair_rules_read_their_pairs_from_the_kept_searches(tool_rows, tmp_path, monkeypatch):
    """Whole-answer pairs, or other bounds, from the trees a step-pair run kept (one file shared through --trees):
    no question searched again, and the same pairs as a run that searches from scratch."""
    import grape.search.run as run

    rows = read_table_rows(tool_rows)[1:4]
    source = write_rows(rows, tmp_path / "rows.jsonl")
    (tmp_path / "rows.jsonl.meta.json").write_text((tool_rows.parent / "rows.jsonl.meta.json").read_text())
    trees = tmp_path / "searches.jsonl"
    step, searched = mcts(source, tmp_path / "step.jsonl", **FAST, trees=str(trees))
    assert searched["questions_from_kept_trees"] == 0 and len(trees.read_text().splitlines()) == 3
    ablations = [{"pairs": "answer", "max_overlap": 1.0}, {"min_gap": 0.5, "min_chosen": 0.0}, {"max_overlap": 0.2}]
    fresh = [mcts(source, None, **{**FAST, **rules})[0] for rules in ablations]  # searched again, no trees kept
    calls = []
    monkeypatch.setattr(run, "searches", lambda work, *args: (calls.extend(work), iter(()))[1])
    for rules, expected in zip(ablations, fresh, strict=True):
        output = tmp_path / "ablation.jsonl"
        assert main(["itool", "mcts", str(source), "-o", str(output), "--trees", str(trees),
                     *(f"--{k.replace('_', '-')}={v}" for k, v in {**FAST, **rules}.items())]) == 0  # fmt: skip
        assert read_table_rows(output) == expected and not calls
        summary = read_sidecar(output)["summary"]
        assert summary["questions_from_kept_trees"] == 3 and summary["generator_calls"] == searched["generator_calls"]
    assert fresh[0] and all(r["level"] == "answer" for r in fresh[0]) and step != fresh[1]
    assert len(trees.read_text().splitlines()) == 3  # nothing searched, nothing added
