"""`grape report RUN_DIR ...`: real pipeline runs (two arms) read back, checked against the files the trainer
and the evaluator wrote themselves; and hand-made run directories for the edge cases (a cut sft, a moved run)."""

import json
import math
import shutil

import pytest
import yaml
from test_report_content import html_table

from grape.cli import main
from grape.data.tables import read_table_rows, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.report import runs
from grape.report.run_figures import Accuracy, LossCurve, accuracy_figure, loss_figure
from grape.report.run_report import build_run_report, write_run_report
from grape.report.runs import arm_labels, read_run

Z = 1.959963984540054


def wilson_reference(correct: int, n: int) -> tuple[float, float]:
    """Wilson's interval as the roots of (p - p̂)² = z² p (1 - p) / n, a quadratic in p (independent of grape's)."""
    p_hat = correct / n
    a, b, c = 1 + Z * Z / n, -(2 * p_hat + Z * Z / n), p_hat * p_hat
    root = math.sqrt(b * b - 4 * a * c)
    return (-b - root) / (2 * a), (-b + root) / (2 * a)


def test_loss_and_accuracy_are_what_the_trainer_and_the_evaluator_wrote(pipeline_runs):
    report = build_run_report(pipeline_runs)
    assert [run.label for run in report.runs] == ["grape", "lowest"]
    for run, curve in zip(pipeline_runs, report.curves, strict=True):
        folder = run / "sft" / "model" / "checkpoints"
        checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.removeprefix("checkpoint-")))
        history = json.loads((checkpoints[-1] / "trainer_state.json").read_text())["log_history"]
        logged = [(e["step"], e["loss"]) for e in history if "loss" in e]  # the trainer's own record
        assert (curve.steps, curve.losses) == ([s for s, _ in logged], [v for _, v in logged])
        assert curve.steps == [1, 2, 3] and curve.finished
    for run, result in zip(pipeline_runs, report.evals, strict=True):
        answers = read_table_rows(run / "eval" / "eval.jsonl")  # counted here, from the per-item verdicts
        judged = [a for a in answers if a["correct"] is not None]
        accuracy = result.accuracy
        assert (accuracy.correct, accuracy.judged, result.items) == (sum(a["correct"] for a in judged), len(judged), 4)
        assert (accuracy.low, accuracy.high) == pytest.approx(wilson_reference(accuracy.correct, accuracy.judged))
    assert [s.label for s, _ in report.selections] == ["grape", "lowest"]
    chosen = [{(r["id"], r["candidate"]) for r in read_table_rows(s.selection)} for s, _ in report.selections]
    assert len(chosen[0]) == len(chosen[1]) == 4 and not chosen[0] & chosen[1]  # best vs worst of two correct ones
    assert [page.sources.set_index("source")["chosen"].sum() for _, page in report.selections] == [4, 4]
    assert set(report.figures) == {"training_loss", "eval_accuracy"}
    (paired,) = report.paired  # the two arms were judged on the same held-out items
    right = [{a["id"]: a["correct"] for a in read_table_rows(run / "eval" / "eval.jsonl")} for run in pipeline_runs]
    only = [sum(r[i] and not o[i] for i in r) for r, o in ((right[0], right[1]), (right[1], right[0]))]
    assert (paired.first, paired.second, paired.items, [paired.only_first, paired.only_second]) == (
        "grape", "lowest", 4, only)  # fmt: skip


def test_the_page_shows_the_arms_side_by_side(pipeline_runs, tmp_path):
    html = write_run_report(pipeline_runs, tmp_path / "arms.html").read_text()
    evals = html_table(html, "evals")
    assert evals[0] == ["arm", "items", "judged", "correct", "accuracy", "95% interval", "data"]
    assert [row[:2] for row in evals[1:]] == [["grape", "4"], ["lowest", "4"]]
    training = html_table(html, "training")
    assert [(row[0], row[1], row[2], row[5]) for row in training[1:]] == [("grape", "3", "3", "finished"),
                                                                          ("lowest", "3", "3", "finished")]  # fmt: skip
    steps = html_table(html, "runs")[1]
    assert steps[:3] == ["grape", str(pipeline_runs[0]), "5 of 5"] and steps[3].startswith("verify ✓")
    for prefix in ("s1-", "s2-"):  # each selection page with its own ids
        assert html_table(html, f"{prefix}sources")[0][0] == "source"
        assert f'id="{prefix}figure-fit_vs_length"' in html and f'data-table="{prefix}margins"' in html
    assert html.count('class="plotly-graph-div"') == 2 + 2 * 4  # loss, accuracy; four per (verified) selection
    assert html.count("Plotly.newPlot") == 10 and len(html) < 2 * 4_000_000  # plotly.js inline once


def test_the_cli_takes_run_directories(pipeline_runs, tmp_path, capsys):
    out = tmp_path / "run.html"
    assert main(["report", *map(str, pipeline_runs), "-o", str(out)]) == 0
    assert out.is_file() and "report written to" in capsys.readouterr().err
    first, *rest = map(str, pipeline_runs)  # the runs may also follow the flags
    assert main(["report", first, "-o", str(out), *rest]) == 0 and "report written to" in capsys.readouterr().err
    scores = pipeline_runs[0] / "score" / "scores.parquet"
    assert main(["report", str(scores), str(pipeline_runs[1]), "-o", str(out)]) == 2
    assert "one scores table, or one or more run directories" in capsys.readouterr().err
    assert main(["report", str(pipeline_runs[0]), "--selection", "x.jsonl", "-o", str(out)]) == 2
    assert "--selection goes with a scores table" in capsys.readouterr().err


def test_a_moved_run_still_reads(pipeline_runs, tmp_path):
    moved = shutil.copytree(pipeline_runs[0], tmp_path / "elsewhere" / "grape")
    report = build_run_report([moved])
    ((selection, _),) = report.selections
    assert selection.scores == moved / "score" / "scores.parquet"  # this copy's table, not the original's
    assert report.curves[0].steps == [1, 2, 3] and report.evals[0].accuracy.judged == 4


def test_an_unfinished_sft_shows_its_last_checkpoint_and_numbers_come_from_the_sidecars(tmp_path):
    run = tmp_path / "cut"
    _step(run, "sft", "sft", "model", finished=False)
    for step, losses in ((2, [2.5, 2.0]), (4, [2.5, 2.0, 1.75, 1.5])):  # the trainer keeps its whole history
        state = {"log_history": [{"step": i + 1, "loss": v, "learning_rate": 1e-3} for i, v in enumerate(losses)]}
        folder = run / "sft" / "model" / "checkpoints" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "trainer_state.json").write_text(json.dumps(state))
    output = _step(run, "eval", "eval", "eval.jsonl", finished=True)
    write_rows([{"id": "a"}], output)
    write_sidecar(output, {"stage": "eval", "data": "/data/held.jsonl", "settings": {"model": "m"},
                           "summary": {"items": 41, "judged": 40, "correct": 13, "accuracy": 13 / 40,
                                       "ci95": list(wilson_reference(13, 40))}})  # fmt: skip
    (run / "pipeline.resolved.yaml").write_text(yaml.safe_dump({"steps": [
        {"name": "sft", "type": "sft", "output": "/gone/sft/model"},
        {"name": "eval", "type": "eval", "output": "/gone/eval/eval.jsonl"}]}))  # fmt: skip
    report = build_run_report([run])
    assert report.curves == [LossCurve("cut", [1, 2, 3, 4], [2.5, 2.0, 1.75, 1.5], finished=False)]
    (result,) = report.evals
    accuracy = result.accuracy
    assert (accuracy.correct, accuracy.judged, result.items, result.data) == (13, 40, 41, "/data/held.jsonl")
    html = report.html()
    assert html_table(html, "training")[1] == ["cut", "4", "4", "2.5000", "1.5000", "not finished (last checkpoint)"]
    assert html_table(html, "evals")[1] == ["cut", "41", "40", "13", "32.5%", "20.1–48.0%", "held.jsonl"]
    assert html_table(html, "runs")[1][2:] == ["1 of 2", "sft ·; eval ✓ 7 s"]
    (run / "pipeline.resolved.yaml").unlink()  # without it: the finished steps, from their stage.json
    assert [step.name for step in read_run(run).steps] == ["eval"]


def test_arms_on_the_same_items_are_compared_item_by_item(tmp_path):
    from scipy.stats import binomtest

    # a right on 12 items, b on 3 of them plus 1 more, of 20; c was judged on other items
    verdicts = {"a": [i < 12 for i in range(20)], "b": [i < 3 or i == 19 for i in range(20)]}
    for arm, right in verdicts.items():
        _eval_run(tmp_path / arm, [{"id": f"q{i}", "correct": r} for i, r in enumerate(right)])
    _eval_run(tmp_path / "c", [{"id": f"other{i}", "correct": True} for i in range(20)])
    report = build_run_report([tmp_path / "a", tmp_path / "b", tmp_path / "c"])
    (paired,) = report.paired
    assert (paired.first, paired.second, paired.items, paired.only_first, paired.only_second) == ("a", "b", 20, 9, 1)
    assert paired.p == pytest.approx(binomtest(9, 10, 0.5).pvalue)
    assert html_table(report.html(), "paired")[1] == ["a", "b", "20", "9", "1", f"{paired.p:.3g}"]


def _eval_run(run, rows):
    output = _step(run, "eval", "eval", "eval.jsonl", finished=True)
    write_rows(rows, output)
    correct = sum(r["correct"] for r in rows)
    write_sidecar(output, {"stage": "eval", "data": "held.jsonl", "settings": {"model": "m"},
                           "summary": {"items": len(rows), "judged": len(rows), "correct": correct,
                                       "ci95": list(wilson_reference(correct, len(rows)))}})  # fmt: skip


def test_every_training_step_gets_its_curve_named_by_its_step(tmp_path):
    run = tmp_path / "arm"
    curves = {"sft": [[1, 2.0], [2, 1.5]], "dpo": [[1, 0.69], [2, 0.6]], "rm": [[1, 0.7, 0.5], [2, 0.65, 0.75]]}
    planned = []
    for name, kind in (("sft", "sft"), ("dpo", "dpo"), ("rm", "reward-model")):
        output = _step(run, name, kind, "model", finished=True)
        output.mkdir()
        (output / f"grape-{kind}.json").write_text(json.dumps({"metrics": {"loss_curve": curves[name]}}))
        planned.append({"name": name, "type": kind, "output": str(output)})
    (run / "pipeline.resolved.yaml").write_text(yaml.safe_dump({"steps": planned}))
    report = build_run_report([run])
    assert [(c.label, c.steps, c.losses) for c in report.curves] == [
        ("arm · sft", [1, 2], [2.0, 1.5]),
        ("arm · dpo", [1, 2], [0.69, 0.6]),
        ("arm · rm", [1, 2], [0.7, 0.65]),  # (step, loss, accuracy): the loss is plotted
    ]


def test_run_directory_mistakes_are_one_line_errors(tmp_path):
    with pytest.raises(GrapeError, match="no such run directory"):
        read_run(tmp_path / "missing")
    with pytest.raises(GrapeError, match="not a pipeline run directory"):
        read_run(tmp_path)
    output = _step(tmp_path, "eval", "eval", "eval.jsonl", finished=True)
    write_sidecar(output, {"summary": {"items": 3, "correct": 1}})
    with pytest.raises(GrapeError, match="eval.jsonl: its sidecar's summary lacks"):
        build_run_report([tmp_path])


def test_arm_labels_are_the_shortest_distinct_suffixes(tmp_path):
    assert arm_labels([tmp_path / "x" / "grape", tmp_path / "x" / "lowest"]) == ["grape", "lowest"]
    assert arm_labels([tmp_path / "a" / "run", tmp_path / "b" / "run"]) == ["a/run", "b/run"]


def test_the_file_names_read_are_those_the_pipeline_and_sft_write():
    from grape.pipeline import cache, checks
    from grape.training import resume, sft

    assert (runs.RESOLVED, runs.STATE) == (checks.RESOLVED, cache.STATE)
    assert (runs.done_name("sft"), runs.CHECKPOINTS) == (sft.DONE_NAME, resume.CHECKPOINTS)


def test_figures_carry_the_numbers():
    curves = [LossCurve("a", [1, 2], [2.0, 1.0]), LossCurve("b", [1, 2, 3], [3.0, 2.0, 1.5], finished=False)]
    lines = loss_figure(curves).data
    assert [(t.name, list(t.x), list(t.y), t.line.dash) for t in lines] == [
        ("a", [1, 2], [2.0, 1.0], "solid"), ("b (not finished)", [1, 2, 3], [3.0, 2.0, 1.5], "dash")]  # fmt: skip
    points = accuracy_figure([Accuracy("a", 3, 4, 0.3, 0.95), Accuracy("none", 0, 0, 0.0, 1.0)]).data
    (point,) = points  # nothing judged: no point
    assert list(point.y) == [0.75] and list(point.error_y.array) == pytest.approx([0.2])
    assert list(point.error_y.arrayminus) == pytest.approx([0.45]) and list(point.text) == ["3 of 4"]


def _step(run, name: str, kind: str, output: str, finished: bool):
    folder = run / name
    folder.mkdir(parents=True, exist_ok=True)
    if finished:
        state = {"step": name, "type": kind, "output": output, "seconds": 7.2, "finished_at": 1.0}
        (folder / "stage.json").write_text(json.dumps(state))
    return folder / output
