"""`--png`: the report's figures as PNG files, drawn by Plotly through Kaleido and a local Chromium."""

import struct

import pytest

from grape.errors import GrapeError
from grape.report import build_report, write_report
from grape.report.png import HEIGHT, SCALE, WIDTH, write_pngs


def png_size(path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", data[16:24])  # IHDR: width, height


def test_png_per_figure(chromium, verified_scores, tmp_path, monkeypatch):
    monkeypatch.setenv("BROWSER_PATH", chromium[0])
    html = write_report(verified_scores, None, tmp_path / "report.html", png_dir=tmp_path / "png")
    assert html.is_file()
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == ["chosen_share.png", "correct_share.png", "fit_by_source.png", "fit_vs_length.png"]
    for name in names:
        path = tmp_path / "png" / name
        assert png_size(path) == (WIDTH * SCALE, HEIGHT * SCALE)
        assert path.stat().st_size > 20_000  # drawn, not blank


def test_png_without_a_browser_is_a_one_line_grape_error(scores, tmp_path, monkeypatch):
    # Kaleido also looks in the usual places, so absence is simulated by pointing it at no browser.
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-browser"))
    with pytest.raises(GrapeError, match="--png needs Chrome or Chromium"):
        write_pngs(build_report(scores).figures, tmp_path / "png")


def test_run_report_png_per_figure(chromium, verified_scores, tmp_path, monkeypatch):
    import json
    import shutil

    import yaml

    from grape.report.run_report import write_run_report

    monkeypatch.setenv("BROWSER_PATH", chromium[0])
    run = tmp_path / "runs" / "grape"
    steps = {"score": "scores.parquet", "sft": "model", "eval": "eval.jsonl"}
    for name, output in steps.items():
        (run / name).mkdir(parents=True)
        (run / name / "stage.json").write_text(json.dumps({"step": name, "type": name, "output": output}))
    shutil.copy(verified_scores, run / "score" / "scores.parquet")
    (run / "sft" / "model").mkdir()
    (run / "sft" / "model" / "grape-sft.json").write_text(json.dumps({"metrics": {"loss_curve": [[1, 2.0], [2, 1.0]]}}))
    meta = {"summary": {"items": 10, "judged": 10, "correct": 4, "ci95": [0.168, 0.687]}}
    (run / "eval" / "eval.jsonl.meta.json").write_text(json.dumps(meta))
    planned = [{"name": name, "type": name, "output": f"/elsewhere/{name}/{out}"} for name, out in steps.items()]
    (run / "pipeline.resolved.yaml").write_text(yaml.safe_dump({"steps": planned}))
    write_run_report([run], tmp_path / "run.html", png_dir=tmp_path / "png")
    names = sorted(p.name for p in (tmp_path / "png").iterdir())
    assert names == ["eval_accuracy.png", "grape-chosen_share.png", "grape-correct_share.png",
                     "grape-fit_by_source.png", "grape-fit_vs_length.png", "training_loss.png"]  # fmt: skip
    for name in names:
        path = tmp_path / "png" / name
        assert png_size(path) == (WIDTH * SCALE, HEIGHT * SCALE) and path.stat().st_size > 20_000
