"""The decoder used by `grape eval` (``decode:`` in its settings) and as a `decode` step of `grape run`, after a
`reward-model` step that trains the reward it steers by."""

from __future__ import annotations

import pytest
import yaml
from decoding_models import causal, reward_model

from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.decoding.decode import decode
from grape.evaluation.evaluate import evaluate
from grape.evaluation.settings import EvalSettings
from grape.models.load import load_model
from grape.pipeline import run_pipeline

ITEMS = [
    {"id": "q1", "prompt": "What is 2 + 2?", "answer": "4"},
    {"id": "q2", "prompt": "Name a colour.", "answer": "red"},
]
PAIRS = [{"prompt": f"What is {n} + {n}?", "chosen": f"It is {2 * n}.", "rejected": "No."} for n in range(6)]


@pytest.fixture(scope="module")
def folder(tokenizer, tmp_path_factory):
    root = tmp_path_factory.mktemp("elsewhere")
    causal(tokenizer, 0).model.save_pretrained(root / "sft")
    tokenizer.save_pretrained(root / "sft")
    reward_model(tokenizer, 2).model.save_pretrained(root / "rm")
    tokenizer.save_pretrained(root / "rm")
    write_rows(ITEMS, root / "items.jsonl")
    write_rows(PAIRS, root / "pairs.jsonl")
    return root


def test_grape_run_trains_a_reward_model_then_decodes_with_it(folder):
    (folder / "pipeline.yaml").write_text(f"""
workdir: run
defaults: {{model: {folder / "sft"}, template: paper, device: cpu}}
steps:
  - {{name: rm, type: reward-model, input: pairs.jsonl, max_steps: 2, batch_size: 3, lora_r: 4}}
  - {{name: tq, type: decode, input: items.jsonl, method: tq, baseline: {folder / "sft"}, top_k: 2,
      rollout_tokens: 2, max_new_tokens: 3}}
""")  # fmt: skip
    outcomes = run_pipeline(folder / "pipeline.yaml")
    assert [(o.step, o.type, o.status) for o in outcomes] == [("rm", "reward-model", "ran"), ("tq", "decode", "ran")]
    decoded = folder / "run" / "tq" / "decoded.jsonl"
    assert read_sidecar(decoded)["settings"]["reward"] == str(folder / "run" / "rm" / "model")  # linked
    assert [r["status"] for r in read_table_rows(decoded)] == ["decoded", "decoded"]
    assert {o.status for o in run_pipeline(folder / "pipeline.yaml")} == {"cached"}


def test_grape_eval_answers_with_the_decoder_given_in_its_settings(folder, tmp_path):
    sft = str(folder / "sft")
    loaded = load_model(sft, "float32", "cpu")
    config = tmp_path / "decode.yaml"
    config.write_text(yaml.safe_dump({"method": "tq", "baseline": sft, "reward": str(folder / "rm"),
                                      "top_k": 3, "rollout_tokens": 2, "alpha": 0.0, "device": "cpu"}))  # fmt: skip
    common = dict(model=sft, verifier="exact", max_new_tokens=5, batch_size=1, device="cpu")
    greedy, _ = evaluate(folder / "items.jsonl", None, EvalSettings(**common), loaded=loaded)
    guided, _ = evaluate(folder / "items.jsonl", None, EvalSettings(**common, decode=str(config)), loaded=loaded)
    assert [r["response"] for r in guided] == [r["response"] for r in greedy]  # α = 0: greedy, through eval
    config.write_text(config.read_text().replace("alpha: 0.0", "alpha: 50.0"))
    steered, _ = evaluate(folder / "items.jsonl", None, EvalSettings(**common, decode=str(config)), loaded=loaded)
    alone, _ = decode(folder / "items.jsonl", None, **yaml.safe_load(config.read_text()), model=sft,
                      max_new_tokens=5, stop=["\nQuestion:"])  # fmt: skip
    assert [r["response"] for r in steered] == [r["response"] for r in alone]  # the same decoder as grape decode


def test_grape_eval_decode_flag_answers_with_that_decoder(folder, tmp_path, capsys):
    from grape.cli import main

    sft = str(folder / "sft")
    config = tmp_path / "steer.yaml"
    config.write_text(yaml.safe_dump({"method": "tq", "baseline": sft, "reward": str(folder / "rm"), "top_k": 3,
                                      "rollout_tokens": 2, "alpha": 50.0, "device": "cpu"}))  # fmt: skip
    common = ["eval", "--data", str(folder / "items.jsonl"), "--model", sft, "--verifier", "exact",
              "--max-new-tokens", "5", "--batch-size", "1", "--device", "cpu"]  # fmt: skip
    assert main([*common, "-o", str(tmp_path / "steered.jsonl"), "--decode", str(config)]) == 0
    assert main([*common, "-o", str(tmp_path / "greedy.jsonl")]) == 0
    steered, greedy = (read_table_rows(tmp_path / f"{name}.jsonl") for name in ("steered", "greedy"))
    alone, _ = decode(folder / "items.jsonl", None, **yaml.safe_load(config.read_text()), model=sft,
                      max_new_tokens=5, stop=["\nQuestion:"])  # fmt: skip
    assert [r["response"] for r in steered] == [r["response"] for r in alone]
    assert read_sidecar(tmp_path / "steered.jsonl")["settings"]["decode"] == str(config)
    assert read_sidecar(tmp_path / "greedy.jsonl")["settings"]["decode"] is None
    assert [r["response"] for r in greedy] != [r["response"] for r in steered], "α = 50 must steer somewhere"
    capsys.readouterr()
    assert main(["eval", "--harness", "lm-eval", "--tasks", "gsm8k", "--decode", str(config)]) == 2
    assert "--decode: grape's own evaluation only" in capsys.readouterr().err
