"""`grape tta` end to end on a small .npz: it learns, writes its rows and sidecar, and takes --config."""

import json

import numpy as np
import pytest
import yaml

from grape.cli import main
from grape.data.tables import read_sidecar
from grape.errors import GrapeError
from grape.tta.run import tta


def stripes(path, n_per_domain=40):
    """Class 0: a bright row, class 1: a bright column; domain d adds brightness 0.2·d and noise (three domains)."""
    rng = np.random.default_rng(0)
    xs, ys, ds = [], [], []
    for d in range(3):
        for i in range(n_per_domain):
            image = rng.random((8, 8)) * 0.3 + 0.2 * d
            line = rng.integers(1, 7)
            if i % 2 == 0:
                image[line, :] += 1.0
            else:
                image[:, line] += 1.0
            xs.append(image)
            ys.append(i % 2)
            ds.append(f"dom{d}")
    np.savez(path, x=np.array(xs, np.float32), y=np.array(ys), domain=np.array(ds))
    return path


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return str(stripes(tmp_path_factory.mktemp("tta") / "stripes.npz"))


def test_erm_learns_a_held_out_domain(data):
    metrics = tta(None, data=data, heldout="dom2", method="erm", steps=60, batch_per_domain=8, eval_every=20,
                  width=8, blocks=2)  # fmt: skip
    assert metrics["accuracy"]["none"] >= 0.9  # 0.5 is chance
    assert (metrics["target_images"], metrics["train_images"], metrics["val_images"]) == (40, 64, 16)


def test_grape_tta_writes_rows_and_sidecar_and_flags_win_over_config(data, tmp_path, capsys):
    config = tmp_path / "tta.yaml"
    config.write_text(yaml.safe_dump({"method": "ttt", "steps": 2, "eval_every": 1, "width": 4, "blocks": 2,
                                      "weight_depth": 2, "adapter_depth": 2, "heldout": "dom0"}))  # fmt: skip
    out = tmp_path / "run"
    argv = ["tta", "--data", data, "--heldout", "dom1", "--method", "itta", "-o", str(out), "--config", str(config)]
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "accuracy.jsonl").read_text().splitlines()]
    assert [r["mode"] for r in rows] == ["none", "reset", "carry"]
    assert all(r["method"] == "itta" and r["heldout"] == "dom1" and r["n"] == 40 for r in rows)
    meta = read_sidecar(out / "accuracy.jsonl")
    assert (meta["settings"]["method"], meta["settings"]["steps"], meta["settings"]["heldout"]) == ("itta", 2, "dom1")
    assert meta["metrics"]["accuracy"] == {r["mode"]: r["accuracy"] for r in rows}
    assert "held-out domain dom1" in capsys.readouterr().err


def test_user_mistakes_are_one_line_errors(data, tmp_path, capsys):
    assert main(["tta", "--data", data, "--heldout", "nowhere", "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err.strip()
    assert "no domain 'nowhere'; the domains are dom0, dom1, dom2" in err and len(err.splitlines()) == 1
    assert main(["tta", "--data", "images.csv", "-o", str(tmp_path / "x")]) == 2
    assert "expected 'digits' or a .npz file" in capsys.readouterr().err
    with pytest.raises(GrapeError, match=r"unknown TTASettings setting\(s\): metod \(did you mean method\?\)"):
        tta(None, metod="erm")
    with pytest.raises(GrapeError, match="--method: expected one of erm, mixstyle, ttt, itta-no-tt, itta"):
        tta(None, method="tent")


def test_a_file_where_the_output_folder_goes_is_refused_before_anything_loads(data, tmp_path, capsys, monkeypatch):
    """It used to be refused only when the rows were written, after the whole training."""
    import grape.tta.run

    def never(*args, **kwargs):
        raise AssertionError("the data was loaded before the output was checked")

    monkeypatch.setattr(grape.tta.run, "load_domains", never)
    out = tmp_path / "run"
    out.write_text("kept\n")
    assert main(["tta", "--data", data, "--heldout", "dom1", "--method", "erm", "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"cannot write {out}: {out} is a file, not a folder" in err
    assert out.read_text() == "kept\n"
