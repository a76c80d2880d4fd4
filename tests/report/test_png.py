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
