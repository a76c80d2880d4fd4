"""Two processes that load the same GGUF model on a fresh cache (two Ray workers, two commands at once) convert it
once between them: the second waits for the first and takes its folder, instead of deleting the first's
half-written `.partial` folder under it. Neither draws transformers' own tqdm bar over grape's status line."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from grape.models.embedded import EMBEDDED

CONVERT = """
import json, sys, time
from pathlib import Path
from grape.models.load import converted_gguf_dir
gguf = Path(sys.argv[1])
started = time.time()
folder = converted_gguf_dir(gguf)
print(json.dumps({"folder": str(folder), "seconds": time.time() - started}))
"""


def test_two_processes_converting_one_gguf_share_one_conversion(tmp_path):
    gguf = EMBEDDED["smollm2-135m-instruct"].gguf_path()
    env = {**os.environ, "GRAPE_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    runs = [subprocess.Popen([sys.executable, "-c", CONVERT, str(gguf)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True) for _ in range(2)]  # fmt: skip
    results = []
    for run in runs:
        out, err = run.communicate(timeout=600)
        assert run.returncode == 0, err[-2000:]
        assert "de-quantizing GGUF tensors" not in err, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    folders = {r["folder"] for r in results}
    assert len(folders) == 1
    folder = tmp_path / "cache" / "models" / next(iter(folders)).rsplit("/", 1)[1]
    assert json.loads((folder / "grape-source.json").read_text())["gguf"] == str(gguf.resolve())
    assert (folder / "config.json").is_file() and list(folder.glob("*.safetensors"))
    assert not list(folder.parent.glob("*.partial"))  # nothing half-written left beside it
