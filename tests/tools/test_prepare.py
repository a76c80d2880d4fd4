"""`grape tools prepare`: BFCL files and chat trajectories into rows that sft, rl and verify read."""

import pytest
from shared_data import shared_file
from tool_template import with_tool_template

from grape.cli import main
from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.errors import GrapeError, InputError
from grape.text import Renderer
from grape.tools.prepare import prepare
from grape.training.dataset import tokenise_examples
from grape.verification.verify import verify

SEARCH = {"type": "function", "function": {"name": "search", "description": "Search the web.",
          "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}}  # fmt: skip
OPEN = {"type": "function", "function": {"name": "search_open", "description": "Open a result.",
        "parameters": {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}}}  # fmt: skip


def _call(name, **arguments):
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function",
            "function": {"name": name, "arguments": arguments}}]}  # fmt: skip


TRAJECTORY = {"id": "t1", "tools": [SEARCH, OPEN], "messages": [
    {"role": "user", "content": "What does grape do?"},
    _call("search", q="grape docs"), {"role": "tool", "content": "ConnectionError: timed out"},
    _call("search", q="grape docs"), {"role": "tool", "content": "1. grape: fit-aware post-training"},
    _call("search_open", n=1), {"role": "tool", "content": "grape scores candidates with the target model."},
    {"role": "assistant", "content": "It picks the responses that fit the model best."}]}  # fmt: skip


def _bfcl_subset(tmp_path, category, lines):
    """The first ``lines`` questions of a BFCL category and their answers (in tmp_path, never in the project)."""
    questions = shared_file(f"bfcl/BFCL_v4_{category}.json")
    answers = questions.parent / "possible_answer" / questions.name
    out = []
    for source in (questions, answers):
        target = tmp_path / source.parent.name / source.name
        target.parent.mkdir(exist_ok=True)
        target.write_text("".join(source.read_text(encoding="utf-8").splitlines(keepends=True)[:lines]))
        out.append(target)
    return out


def test_bfcl_rows_from_the_command_line_are_judged_right(tmp_path):
    questions, answers = _bfcl_subset(tmp_path, "parallel_multiple", 5)
    output = tmp_path / "rows.jsonl"
    assert main(["tools", "prepare", str(questions), "--answers", str(answers), "-o", str(output)]) == 0
    rows = read_table_rows(output)
    assert [r["id"] for r in rows] == [f"parallel_multiple_{i}" for i in range(5)]
    first = rows[0]
    system = first["prompt"][0]
    assert system["role"] == "system" and "def math_toolkit.sum_of_multiples(" in system["content"]
    assert first["completion"] == ("math_toolkit.sum_of_multiples(lower_limit=1, upper_limit=1000, multiples=[3, 5])\n"
                                   "math_toolkit.product_of_primes(count=5)")  # fmt: skip
    meta = read_sidecar(output)
    assert meta["settings"]["format"] == "plain" and meta["counts"]["rows"] == 5 and "score_settings" not in meta
    pool = [{"id": r["id"], "prompt": r["prompt"], "answer": r["answer"], "tools": r["tools"],
             "candidates": [{"text": r["completion"], "source": "gold"},
                            {"text": r["completion"].splitlines()[0], "source": "first call only"}]}
            for r in rows]  # fmt: skip
    _, counts = verify(write_rows(pool, tmp_path / "pool.jsonl"), None, verifier="tool-call")
    assert (counts["gold"].correct, counts["first call only"].incorrect) == (5, 5)
    assert counts["first call only"].reasons == {"missing call": 5}


def test_trajectories_become_clean_turns_with_key_token_weights(tmp_path, smollm2_tokenizer):
    data = write_rows([TRAJECTORY], tmp_path / "trajectories.jsonl")
    output = tmp_path / "rows.jsonl"
    rows, summary = prepare(data, output, weights="key-tokens", model="smollm2-135m-instruct")
    assert [r["id"] for r in rows] == ["t1/turn2", "t1/turn3", "t1/turn4"]  # turn 1 hit ConnectionError
    assert summary == {"rows": 3, "excluded_turns": 1, "without_completion": 0, "without_answer": 0}
    meta = read_sidecar(output)
    assert meta["excluded"] == [{"id": "t1/turn1", "signature": "ConnectionError"}]
    assert meta["score_settings"] == {"model": "smollm2-135m-instruct", "template": "chat", "eos": True}
    second, third, fourth = rows
    assert second["prompt"][2] == {"role": "assistant", "content": "search(q='grape docs')"}  # the failed turn stays
    assert third["completion"] == "search_open(n=1)" and third["answer"] == [{"search_open": {"n": [1]}}]
    assert fourth["answer"] == [] and fourth["loss_weights"] == [1.0] * len(fourth["loss_weights"])
    renderer = Renderer(smollm2_tokenizer, "chat")
    examples = tokenise_examples(rows, renderer, 4096, weighted=True)  # what grape sft --loss weighted reads
    for row, example in zip(rows, examples, strict=True):
        n = len(row["loss_weights"])
        assert example.loss_weights[-n:] == row["loss_weights"] and sum(example.completion_mask) == n
    # search_open against search: K = 'search' (the first token) and the token where '_open' begins
    ids = renderer.encode(third["prompt"], [third["completion"]])[0].response
    key = [smollm2_tokenizer.decode([i]) for i, w in zip(ids, third["loss_weights"], strict=True) if w > 1]
    assert key == ["search", "_"]


def test_multi_turn_bfcl_and_rows_where_no_call_is_right(tmp_path):
    questions, answers = _bfcl_subset(tmp_path, "multi_turn_base", 2)
    docs = shared_file("bfcl/multi_turn_func_doc/gorilla_file_system.json").parent
    rows, _ = prepare(questions, answers=str(answers), docs=str(docs))
    assert [r["id"] for r in rows][:4] == [f"multi_turn_base_0/turn{k}" for k in (1, 2, 3, 4)]
    assert rows[2]["completion"] == "sort(file_name='final_report.pdf')"  # the key's sort('final_report.pdf')
    irrelevance = shared_file("bfcl/BFCL_v4_irrelevance.json")
    rows, summary = prepare(irrelevance)
    assert summary["without_completion"] == len(rows) == 240 and all(r["answer"] == [] for r in rows)
    rows, summary = prepare(irrelevance, no_call_response="None of these functions fits.")
    assert summary["without_completion"] == 0 and rows[0]["completion"] == "None of these functions fits."


def test_a_chat_template_that_renders_tools(tmp_path, smollm2_tokenizer):
    from transformers import LlamaConfig

    model_dir = tmp_path / "tool-model"
    with_tool_template(smollm2_tokenizer).save_pretrained(model_dir)
    LlamaConfig().save_pretrained(model_dir)  # a model directory: its tokenizer is all prepare loads
    data = write_rows([TRAJECTORY], tmp_path / "trajectories.jsonl")
    rows, _ = prepare(data, tmp_path / "rows.jsonl", model=str(model_dir), weights="key-tokens")
    meta = read_sidecar(tmp_path / "rows.jsonl")
    assert (meta["settings"]["format"], meta["settings"]["template"]) == ("chat", "raw")
    third = rows[1]
    assert isinstance(third["prompt"], str) and "<tools>" in third["prompt"]
    assert third["completion"] == '<tool_call>\n{"name": "search_open", "arguments": {"n": 1}}\n</tool_call>'
    tokenizer = with_tool_template(smollm2_tokenizer)
    ids = Renderer(tokenizer, "raw").encode(third["prompt"], [third["completion"]])[0].response
    assert len(ids) == len(third["loss_weights"])
    key = [tokenizer.decode([i]) for i, w in zip(ids, third["loss_weights"], strict=True) if w > 1]
    assert key == ["search", "_"], key  # the name's first token and where it parts from 'search', inside the JSON


def test_mistakes_are_one_line_errors(tmp_path):
    data = write_rows([TRAJECTORY], tmp_path / "trajectories.jsonl")
    with pytest.raises(GrapeError, match="give --model"):
        prepare(data, weights="key-tokens")
    with pytest.raises(GrapeError, match="as .jsonl"):
        prepare(data, tmp_path / "rows.parquet")
    with pytest.raises(GrapeError, match="--answers is for BFCL's files"):
        prepare(data, answers="x.json")
    questions, _ = _bfcl_subset(tmp_path, "simple_python", 2)
    with pytest.raises(InputError, match=r"row 1: simple_python_0 needs an answer key"):
        prepare(questions)
    no_tools = write_rows([{"id": "simple_python_9", "question": [[{"role": "user", "content": "Add 1 and 2."}]]}],
                          tmp_path / "no_tools.json")  # fmt: skip
    with pytest.raises(InputError, match=r"no_tools.json, row 1, field 'function': missing: a BFCL question lists"):
        prepare(no_tools)
    bad = write_rows([{"id": "b", "messages": "hello", "tools": []}], tmp_path / "bad.jsonl")
    with pytest.raises(InputError, match=r"bad.jsonl, row 1, field 'messages'"):
        prepare(bad)
    bad = write_rows([{"id": "b", "messages": [{"role": "assistant", "content": "f(1, 2)"}],
                       "tools": [SEARCH]}], tmp_path / "bad2.jsonl")  # fmt: skip
    with pytest.raises(InputError, match=r"row 1, field 'messages'"):
        prepare(bad)


@pytest.mark.parametrize(
    ("message", "field"),
    [
        ({"role": 7, "content": "hi"}, "messages[1].role"),
        ({"content": "hi"}, "messages[1].role"),
        ({**_call("search", q="x"), "tool_calls": [{"type": "function", "function": {"name": "search",
                                                                                     "arguments": "[1, 2]"}}]},
         "messages[1].tool_calls[0]"),
        ({**_call("search", q="x"), "tool_calls": [{"name": "search", "arguments": 7}]}, "messages[1].tool_calls[0]"),
        ({**_call("search", q="x"), "tool_calls": {"name": "search", "arguments": {}}}, "messages[1].tool_calls"),
    ],
    ids=["role 7", "no role", "arguments a JSON list", "arguments 7", "tool_calls not a list"],
)  # fmt: skip
def test_a_message_grape_would_misread_is_a_one_line_error_and_nothing_is_written(tmp_path, capsys, message, field):
    """A call whose arguments are no object used to be dropped (the turn's gold became "no call is right"), and a
    role of 7 went through to the rows."""
    rows = [TRAJECTORY, {"id": "t2", "tools": [SEARCH], "messages": [{"role": "user", "content": "Find x."}, message]}]
    data, out = write_rows(rows, tmp_path / "trajectories.jsonl"), tmp_path / "rows.jsonl"
    with pytest.raises(InputError) as caught:
        prepare(data)
    assert (caught.value.file, caught.value.row, caught.value.field) == (str(data), 2, field)
    out.write_text("kept\n")
    assert main(["tools", "prepare", str(data), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"trajectories.jsonl, row 2, field '{field}'" in err
    assert out.read_text() == "kept\n"
