"""`grape demo` writes the report beside its outputs and prints its path (scoring stubbed: the real demo
runs end to end in tests/demo)."""

from grape.cli import main
from grape.data.tables import read_table_rows, write_rows
from grape.scoring.score import SCORES_SCHEMA


def test_demo_writes_report_beside_outputs(scores, tmp_path, monkeypatch, capsys):
    def fake_score(input, output, settings):  # the hand-checked table of conftest.py stands in for scoring
        rows = read_table_rows(scores)
        write_rows(rows, output, SCORES_SCHEMA)
        return rows

    monkeypatch.setattr("grape.scoring.score.score", fake_score)  # the demo imports it when it runs
    assert main(["demo", "-o", str(tmp_path / "out")]) == 0
    report = tmp_path / "out" / "report.html"
    assert report.is_file() and '<tr data-id="q4">' in report.read_text()
    assert f"report:    {report}" in capsys.readouterr().err
