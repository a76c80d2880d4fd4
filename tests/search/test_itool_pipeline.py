"""One iTool iteration end to end on a tiny model, as `grape run` runs examples/itool.yaml: tool rows, the
easy-to-hard warm-up, deficiency, MCTS pairs, SimPO with LoRA merged, eval of the result."""

import yaml
from tool_rows import TRAJECTORIES

from grape.data.tables import read_sidecar, read_table_rows, write_rows
from grape.pipeline import load_pipeline, run_pipeline

EXAMPLE = "examples/itool.yaml"


def test_the_example_pipeline_plans_each_iteration_on_the_model_before_it():
    plan = {p.name: p for p in load_pipeline(EXAMPLE).steps}
    assert plan["deficient.1"].ref_of("model") == "warmup" and plan["deficient.2"].ref_of("model") == "simpo.1"
    assert plan["search.2"].ref_of("input") == "deficient.2" and plan["simpo.2"].ref_of("input") == "search.2"
    assert plan["eval"].ref_of("model") == "simpo.2"
    simpo = plan["simpo.1"].settings
    assert (simpo.loss, simpo.beta, simpo.gamma, simpo.lora_r, simpo.template) == ("simpo", 2.5, 0.5, 8, None)
    search = plan["search.1"].settings
    assert (search.simulations, search.samples, search.max_new_tokens, search.temperature, search.max_depth) == (
        5, 3, 50, 1.5, 3)  # fmt: skip
    assert plan["warmup"].settings.trainer == {"train_sampling_strategy": "sequential"}


def test_a_trees_file_named_in_the_yaml_is_relative_to_it_before_it_exists(tmp_path):
    (tmp_path / "rows.jsonl").write_text('{"id": "q", "prompt": "Hi", "answer": []}\n')
    path = tmp_path / "p.yaml"
    path.write_text("workdir: run\nsteps:\n  - {name: search, type: mcts, input: rows.jsonl, model: "
                    "smollm2-135m-instruct, trees: kept/trees.jsonl}\n  - {name: other, type: mcts, input: "
                    "rows.jsonl, model: smollm2-135m-instruct, trees: /abs/trees.jsonl}\n")  # fmt: skip
    plan = {p.name: p for p in load_pipeline(path).steps}
    assert plan["search"].settings.trees == str(tmp_path / "kept" / "trees.jsonl")
    assert plan["other"].settings.trees == "/abs/trees.jsonl"


def test_one_iteration_end_to_end_on_a_tiny_model(tmp_path, tiny_smol_dir):
    write_rows(TRAJECTORIES, tmp_path / "conversations.jsonl")
    fast = {"batch_size": 4, "lr": 1e-2, "precision": "fp32", "lora_r": 4, "max_steps": 1, "logging_steps": 1}
    spec = {
        "workdir": "runs",
        "defaults": {"model": str(tiny_smol_dir)},
        "steps": [
            {"name": "rows", "type": "tools", "input": "conversations.jsonl"},
            {"name": "order", "type": "curriculum"},
            {"name": "warmup", "type": "sft", "input": "${steps.order.output}", **fast,
             "trainer": {"train_sampling_strategy": "sequential"}},
            {"repeat": 1, "steps": [
                {"name": "deficient", "type": "deficiency", "input": "${steps.rows.output}",
                 "model": "${steps.simpo.output}", "fraction": 0.5},
                {"name": "search", "type": "mcts", "model": "${steps.simpo.output}", "simulations": 2, "samples": 2,
                 "max_new_tokens": 5, "min_gap": 0.0, "min_chosen": -100.0},
                {"name": "simpo", "type": "dpo", "input": "${steps.search.output}", "model": "${steps.simpo.output}",
                 "loss": "simpo", "beta": 2.5, "gamma": 0.5, **fast}]},
            {"name": "eval", "type": "eval", "data": "${steps.rows.output}", "template": "chat",
             "verifier": "tool-call", "max_new_tokens": 4},
        ],
    }  # fmt: skip
    path = tmp_path / "itool.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    outcomes = run_pipeline(path)
    assert [o.step for o in outcomes] == ["rows", "order", "warmup", "deficient.1", "search.1", "simpo.1", "eval"]
    runs = tmp_path / "runs"
    ordered = read_table_rows(runs / "order" / "ordered.jsonl")
    assert [r["id"].split("/")[0] for r in ordered] == ["w7", "w4", "w2", "w5", "w3", "w6", "w1", "w8"]
    deficient = read_table_rows(runs / "deficient.1" / "deficient.jsonl")
    assert sorted(r["group"] for r in deficient) == ["calls"] * 3 + ["no call"]  # half of 6 and of 2
    assert read_sidecar(runs / "deficient.1" / "deficient.jsonl")["settings"]["model"] == str(runs / "warmup" / "model")
    pairs = read_table_rows(runs / "search.1" / "pairs.jsonl")
    assert pairs and {p["question"] for p in pairs} <= {r["id"] for r in deficient}
    trained = read_sidecar(runs / "search.1" / "pairs.jsonl")["score_settings"]
    assert (trained["template"], trained["eos"]) == ("raw", False)
    done = (runs / "simpo.1" / "model" / "grape-dpo.yaml").read_text()
    assert "loss: simpo" in done and "template: raw" in done and "eos: false" in done
    assert (runs / "simpo.1" / "model" / "config.json").is_file()  # LoRA merged: the next iteration's model
    assert read_sidecar(runs / "eval" / "eval.jsonl")["summary"]["items"] == 8
    # the paper's ablation on the same run: the search step reruns with whole-answer pairs from the kept searches
    searched = read_sidecar(runs / "search.1" / "pairs.jsonl")["summary"]
    assert searched["questions_from_kept_trees"] == 0 and (runs / "mcts.trees.jsonl").is_file()
    outcomes = run_pipeline(path, overrides=["search.pairs=answer", "search.max_overlap=1.0"])
    assert [o.step for o in outcomes if o.status != "cached"] == ["search.1", "simpo.1", "eval"]
    ablation = read_sidecar(runs / "search.1" / "pairs.jsonl")
    assert ablation["settings"]["pairs"] == "answer" and ablation["trees"] == str(runs / "mcts.trees.jsonl")
    assert ablation["summary"]["questions_from_kept_trees"] == len(deficient) == searched["questions"]
    assert ablation["summary"]["generator_calls"] == searched["generator_calls"]
    assert all(r["level"] == "answer" for r in read_table_rows(runs / "search.1" / "pairs.jsonl"))
