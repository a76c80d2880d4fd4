"""`grape decode` end to end on model directories: rows and sidecar, --config with flags winning, every prompt
accounted for, one-line errors."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml
from decoding_models import causal, reward_model

from grape.cli import main
from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.decoding.decode import decode
from grape.decoding.reward import REWARD_SETTINGS
from grape.errors import GrapeError

PROMPTS = [
    {"id": "a", "prompt": "What is the capital of France?", "answer": "Paris"},
    {"id": "b", "messages": [{"role": "user", "content": "Name a colour."}]},
    {"id": "c", "messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                             {"role": "user", "content": "Bye"}]},  # three turns: the paper template cannot
]  # fmt: skip


@pytest.fixture(scope="module")
def dirs(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("decode")
    for name, seed in (("sft", 0), ("baseline", 1)):
        loaded = causal(tokenizer, seed)
        loaded.model.save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    rm = reward_model(tokenizer, 2)
    rm.model.save_pretrained(root / "rm")
    tokenizer.save_pretrained(root / "rm")
    (root / "rm" / REWARD_SETTINGS).write_text(yaml.safe_dump({"template": "raw", "eos": False}))
    write_rows(PROMPTS, root / "prompts.jsonl")
    return root


def test_decode_writes_one_row_per_prompt_and_says_how(dirs, tmp_path):
    out = tmp_path / "answers.jsonl"
    config = tmp_path / "decode.yaml"
    config.write_text(yaml.safe_dump({"method": "tq", "top_k": 3, "rollout_tokens": 4, "max_new_tokens": 5,
                                      "model": str(dirs / "sft"), "on_error": "skip", "alpha": 3.0}))  # fmt: skip
    code = main(["decode", str(dirs / "prompts.jsonl"), "-o", str(out), "--config", str(config), "--baseline",
                 str(dirs / "baseline"), "--reward", str(dirs / "rm"), "--device", "cpu", "--trace",
                 "--top-k", "2"])  # fmt: skip
    assert code == 0
    rows = read_table_rows(out)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    assert [r["status"] for r in rows] == ["decoded", "decoded", "skipped:unrenderable_prompt"]
    first = rows[0]
    assert first["answer"] == "Paris" and first["finish_reason"] in ("stop", "length")
    assert len(first["trace"]) == first["n_tokens"] + (first["finish_reason"] == "stop")
    assert all(len(step["candidates"]) == 2 for step in first["trace"])  # the flag won over the file's 3
    assert isinstance(first["reward"], float) and isinstance(first["sft_logprob"], float)
    meta = read_sidecar(out)
    assert meta["settings"]["top_k"] == 2 and meta["settings"]["alpha"] == 3.0
    assert meta["summary"]["prompts"] == 3 and meta["summary"]["decoded"] == 2 and meta["summary"]["skipped"] == 1
    assert meta["summary"]["work"]["reward_tokens"] > 0 and meta["models"]["reward"]["kind"] == "local"
    rerun, _ = decode(dirs / "prompts.jsonl", None, **{k: v for k, v in meta["settings"].items() if k != "columns"})
    assert [r.get("response") for r in rerun] == [r.get("response") for r in rows]  # the sidecar reruns it


def test_the_reward_model_reads_text_with_its_own_template(dirs):
    from grape.decoding.reward import load_reward_model

    rm = load_reward_model(str(dirs / "rm"), device="cpu")
    assert (rm.template, rm.eos) == ("raw", False)
    assert load_reward_model(str(dirs / "rm"), template="paper", eos=True, device="cpu").template == "paper"


def test_settings_that_cannot_run_are_one_line_errors(dirs, tmp_path, capsys):
    prompts = str(dirs / "prompts.jsonl")
    for argv, message in (
        (["--method", "tq", "--reward", str(dirs / "rm")], "needs the aligned baseline"),
        (["--method", "args"], "needs a reward model"),
        (["--method", "tq", "--baseline", "b", "--reward", "r", "--transfer", "indirect"], "needs r_BL"),
        (["--method", "greedy", "--rollouts", "3"], "repeats one rollout"),
        (["--method", "greedy", "--model", str(dirs / "sft"), "--device", "cpu"], "row 3, field 'prompt': template"),
    ):
        assert main(["decode", prompts, "-o", str(tmp_path / "x.jsonl"), *argv]) == 2
        error = capsys.readouterr().err.strip().splitlines()[-1]  # after the progress bar, when it had begun
        assert error.startswith("error:") and message in error, error
    with pytest.raises(GrapeError, match=r"unknown DecodeSettings setting\(s\): topk"):
        decode(prompts, None, topk=3)


def test_a_baseline_with_another_vocabulary_is_refused(dirs, tokenizer, tmp_path):
    other = tmp_path / "other"
    causal(tokenizer, 3).model.save_pretrained(other)
    tokenizer.save_pretrained(other)
    from transformers import AutoTokenizer

    extended = AutoTokenizer.from_pretrained(other)
    extended.add_tokens(["<one-more-token>"])  # one token more: ids no longer mean the same text everywhere
    extended.save_pretrained(other)
    with pytest.raises(GrapeError, match="another tokenizer"):
        decode(dirs / "prompts.jsonl", None, method="tq", model=str(dirs / "sft"), baseline=str(other),
               reward=str(dirs / "rm"), device="cpu", limit=1)  # fmt: skip


def test_the_summary_counts_tokens_and_rewards(dirs):
    rows, summary = decode(dirs / "prompts.jsonl", None, method="bon", n=3, max_new_tokens=4, limit=2,
                           model=str(dirs / "sft"), reward=str(dirs / "rm"), device="cpu", template="chat")  # fmt: skip
    assert summary["tokens"] == sum(r["n_tokens"] for r in rows) and summary["decoded"] == 2
    assert summary["mean_reward"] == pytest.approx(sum(r["reward"] for r in rows) / 2)
    json.dumps(summary)  # the sidecar can hold it


def test_without_a_template_pi_sft_is_prompted_as_grape_trained_it(dirs, tmp_path, capsys):
    """As `grape eval`: the template of π_sft's grape-sft.yaml (here raw), said in one line; else paper."""
    trained = shutil.copytree(dirs / "sft", tmp_path / "sft")
    (trained / "grape-sft.yaml").write_text(yaml.safe_dump({"template": "raw"}))
    common = dict(method="greedy", max_new_tokens=2, device="cpu", limit=1)
    decode(dirs / "prompts.jsonl", tmp_path / "raw.jsonl", model=str(trained), **common)
    assert read_sidecar(tmp_path / "raw.jsonl")["settings"]["template"] == "raw"
    said = " ".join(capsys.readouterr().err.split())
    assert f"prompting with --template raw, the template {trained} was trained with" in said
    decode(dirs / "prompts.jsonl", tmp_path / "paper.jsonl", model=str(dirs / "sft"), **common)
    assert read_sidecar(tmp_path / "paper.jsonl")["settings"]["template"] == "paper"
