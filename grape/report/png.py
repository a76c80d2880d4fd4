"""Export the report's figures as PNG files (for papers and slides).

Plotly draws PNGs through Kaleido, which drives a local Chrome or Chromium; Debian's `chromium`
package is enough (no download). Without one, the user gets a one-line error saying what to install.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go
import plotly.io as pio

from grape.errors import GrapeError

WIDTH, HEIGHT, SCALE = 1000, 520, 2


def write_pngs(figures: dict[str, go.Figure], directory: str | Path) -> list[Path]:
    """Write ``<directory>/<name>.png`` for each figure (one browser session for all); return the paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"{name}.png" for name in figures]
    # The HTML figures fill their page; a PNG needs a fixed size, and a white background for slides.
    sized = [go.Figure(f).update_layout(width=WIDTH, height=HEIGHT, paper_bgcolor="white") for f in figures.values()]
    try:
        pio.write_images(sized, paths, format="png", width=WIDTH, height=HEIGHT, scale=SCALE)
    except RuntimeError as exc:
        if "Kaleido package" in str(exc):
            raise GrapeError("--png needs Kaleido: install grape's png extra: pip install 'grape-fit[png]'") from exc
        if "Chrome" not in str(exc):
            raise
        raise GrapeError(
            "--png needs Chrome or Chromium to draw the figures (Debian/Ubuntu: apt-get install chromium; "
            "elsewhere: run plotly_get_chrome, or set BROWSER_PATH to a Chrome binary)"
        ) from exc
    return paths
