"""A pipeline is checked whole before its first step: each mistake is one line naming the YAML file and
the step, and nothing runs. Also: the step folders grape owns, and the torch-free lists of names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from grape.data.tables import write_rows
from grape.errors import GrapeError
from grape.models.dtypes import ACCEPTED as DTYPES
from grape.pipeline import cache, load_pipeline, run_pipeline
from grape.pipeline.checks import PRECISIONS


def _spec(model_dir: Path) -> dict:
    return {
        "workdir": "run",
        "defaults": {"model": str(model_dir), "template": "paper", "device": "cpu"},
        "steps": [
            {"name": "verify", "type": "verify", "input": "candidates.jsonl"},
            {"name": "fit", "type": "score"},
            {"name": "best", "type": "select", "input": "${steps.fit.output}"},
            {"name": "warmup", "type": "sft", "max_steps": 1},
            {"repeat": 2, "steps": [
                {"name": "rescore", "type": "score", "input": "${steps.verify.output}",
                 "model": "${steps.tune.output}"},
                {"name": "reselect", "type": "select"},
                {"name": "tune", "type": "sft", "model": "${steps.tune.output}", "max_steps": 1},
            ]},
            {"name": "exam", "type": "eval", "data": "candidates.jsonl", "max_new_tokens": 2},
        ],
    }  # fmt: skip


def _step(spec: dict, name: str) -> dict:
    steps = [*spec["steps"][:4], *spec["steps"][4]["steps"], spec["steps"][5]]
    return next(s for s in steps if s["name"] == name)


@pytest.fixture
def written(tiny_model_dir, tmp_path):
    write_rows([{"id": "q0", "prompt": "1 + 1?", "answer": "2", "candidates": [{"text": "2", "source": "a"}]}],
               tmp_path / "candidates.jsonl")  # fmt: skip
    return tmp_path / "p.yaml", _spec(tiny_model_dir)


def test_a_valid_pipeline_plans_every_run_in_order(written):
    path, spec = written
    path.write_text(yaml.safe_dump(spec))
    steps = load_pipeline(path).steps
    assert [p.name for p in steps] == ["verify", "fit", "best", "warmup", "rescore.1", "reselect.1", "tune.1",
                                       "rescore.2", "reselect.2", "tune.2", "exam"]  # fmt: skip
    by_name = {p.name: p for p in steps}
    assert by_name["exam"].settings.model == str(by_name["tune.2"].output)  # eval takes the last trained model
    assert by_name["exam"].ref_of("model") == "tune.2" and by_name["reselect.2"].ref_of("input") == "rescore.2"
    assert by_name["rescore.1"].ref_of("model") == "warmup" and by_name["tune.1"].ref_of("model") == "warmup"


def _edit(spec: dict, step: str | None, **changes) -> dict:
    spec = json.loads(json.dumps(spec))
    (_step(spec, step) if step else spec).update(changes)
    return spec


MISTAKES = [
    # (step to change or None for the top level, changes, the error after "<yaml>: ")
    (None, {"stepz": []}, r"unknown key\(s\) stepz; a pipeline has workdir, defaults, steps"),
    ("fit", {"type": "scroe"}, r"steps.fit: unknown type 'scroe'; types are generate, verify"),
    ("best", {"name": "fit"}, r"step name\(s\) used twice: fit"),
    ("best", {"name": "best.2"}, r"steps\[2\]: every step needs a `name:` of letters, digits"),
    ("best", {"stratgy": "grape"}, r"steps.best: unknown setting\(s\) stratgy; a select step has input, format"),
    ("best", {"strategy": "best"}, r"steps.best: strategy: unknown strategy 'best'"),
    ("best", {"format": "csv"}, r"steps.best: format: 'csv' is not one of prompt-completion, messages"),
    ("fit", {"dtype": "float64"}, r"steps.fit: dtype: 'float64' is not one of auto, float32"),
    ("verify", {"on_error": "ignore"}, r"steps.verify: on_error: 'ignore' is not one of fail, skip"),
    ("fit", {"part_size": 0}, r"steps.fit: part_size: 0: must be at least 1"),
    ("exam", {"limit": -2}, r"steps.exam: limit: -2: must be at least 1"),  # eval checked it only when it ran
    ("fit", {"limit": 0}, r"steps.fit: limit: 0: must be at least 1"),
    ("exam", {"template": "papr"}, r"steps.exam: template: 'papr' is not one of paper"),
    ("exam", {"verifier": "maths"}, r"steps.exam: verifier: unknown verifier 'maths': use one of math, "),
    ("verify", {"verifier": "regex:"}, r"steps.verify: verifier: unknown verifier 'regex:'"),
    ("tune", {"precision": "fp8"}, r"steps.tune: precision: 'fp8' is not one of auto"),
    ("tune", {"max_steps": 0, "epochs": 0}, r"steps.tune: set epochs > 0 or max_steps > 0"),
    ("best", {"input": "${steps.fitt.output}"}, r"steps.best: input: \$\{steps.fitt.output\}: no step named 'fitt'"),
    ("best", {"input": "${step.fit.output}"}, r"steps.best: input: unknown reference \$\{step.fit.output\}"),
    ("best", {"seed": "${iteration}"}, r"steps.best: seed: \$\{iteration\} is only defined inside a repeat block"),
    ("best", {"input": "${steps.best.output}"}, r"steps.best: input: .* the step's own output \(a cycle\)"),
    ("best", {"input": "${steps.warmup.output}"}, r"steps.best: input: \$\{steps.warmup.output\} runs after this"),
    ("fit", {"input": "nothing.jsonl"}, r"steps.fit: input: .*nothing.jsonl does not exist"),
    ("fit", {"model": "missing.gguf"}, r"steps.fit: model: missing.gguf: no such GGUF file"),
    ("exam", {"model": "./models/tuned"}, r"steps.exam: model: ./models/tuned: no such model directory \(nor a Hub"),
    ("tune", {"template": "raw"}, r"steps.tune: `template` is 'raw' but rescore.1, upstream of it, has 'paper'"),
    ("exam", {"data": None}, r"steps.exam: no `data:` given"),
]


@pytest.mark.parametrize(("step", "changes", "message"), MISTAKES, ids=[m[2][:40] for m in MISTAKES])
def test_each_mistake_is_one_line_naming_the_file_and_the_step_and_nothing_runs(written, step, changes, message):
    path, spec = written
    path.write_text(yaml.safe_dump(_edit(spec, step, **changes)))
    with pytest.raises(GrapeError, match=message) as caught:
        run_pipeline(path)
    assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    assert not (path.parent / "run").exists()  # checked before the first step


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"repeat": 0, "steps": []}, r"steps\[4\]: `repeat:` must be a whole number of iterations, at least 1"),
        ({"repeat": 2, "steps": [{"repeat": 2, "steps": []}]}, r"a repeat block inside a repeat block"),
        ({"repeat": 2, "times": 3, "steps": []}, r"unknown key\(s\) times in a repeat block"),
    ],
)
def test_bad_repeat_blocks(written, block, message):
    path, spec = written
    spec["steps"][4] = block
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(GrapeError, match=message):
        load_pipeline(path)


def test_a_repeat_block_first_needs_a_step_before_it_to_stand_for_its_later_steps(written):
    path, spec = written
    spec["steps"] = [spec["steps"][0], spec["steps"][4]]  # verify, then the block: rescore's model is tune's
    path.write_text(yaml.safe_dump(spec))
    assert load_pipeline(path).steps[1].ref_of("model") == "verify"  # the step just before the block
    spec["steps"] = [spec["steps"][1]]
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(GrapeError, match=r"steps.rescore: input: .*no step named 'verify'"):
        load_pipeline(path)
    spec["steps"][0]["steps"][0]["input"] = "candidates.jsonl"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(GrapeError, match=r"steps.rescore: model: in the first iteration .* no step comes before"):
        load_pipeline(path)


def test_begin_refuses_a_folder_without_the_marker_and_clears_its_own(tmp_path):
    mine = tmp_path / "select"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    with pytest.raises(GrapeError, match=r"select exists and was not made by grape \(no .grape-step marker\)"):
        cache.begin(mine, "select", "select", "k1")
    assert (mine / "notes.txt").read_text() == "mine"
    ours = tmp_path / "score"
    assert cache.begin(ours, "score", "score", "k1") is False
    (ours / "part.txt").write_text("half done")
    assert cache.begin(ours, "score", "score", "k1") is True and (ours / "part.txt").exists()  # resumed
    assert cache.begin(ours, "score", "score", "k2") is False and not (ours / "part.txt").exists()  # other key
    older = tmp_path / "sft"  # a folder of a grape from before the marker
    older.mkdir()
    (older / cache.OLD_MARKER).write_text(json.dumps({"key": "k3"}))
    assert cache.is_grape_folder(older) and cache.begin(older, "sft", "sft", "k3") is True


def test_the_torch_free_name_lists_match_what_the_loaders_accept():
    import torch

    from grape.models.load import resolve_dtype
    from grape.training.settings import SFTSettings, use_bf16

    cpu = torch.device("cpu")
    for name in DTYPES:
        resolve_dtype(name, cpu)
    for name in PRECISIONS:
        use_bf16(SFTSettings(precision=name), cpu)
    with pytest.raises(GrapeError):
        resolve_dtype("float64", cpu)
    with pytest.raises(GrapeError):
        use_bf16(SFTSettings(precision="fp8"), cpu)


def test_the_example_pipelines_are_valid():
    examples = Path(__file__).parents[2] / "examples"
    simple = load_pipeline(examples / "pipeline.yaml").steps
    assert [p.name for p in simple] == ["generate", "verify", "score", "select", "report", "sft", "eval"]
    assert simple[4].ref_of("selection") == "select" and simple[6].ref_of("model") == "sft"
    iterated = {p.name: p for p in load_pipeline(examples / "iterate.yaml").steps}
    assert iterated["tune.2"].ref_of("model") == "tune.1" and iterated["eval"].ref_of("model") == "tune.2"
    assert iterated["from_smollm"].ref_of("input") == "from_target" and iterated["verify"].ref_of("input") == (
        "from_smollm"
    )
