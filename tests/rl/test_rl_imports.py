"""grape/rl stands on the base (data, models, text, config, console, errors) and public functions of other stages:
the verifier registry, the tool-call judgement's reward (TL-Training's IRM), and the rules it shares with sft:
when a re-run resumes (grape.training.resume) and the model a file's sidecar names (grape.training.scoring_defaults)."""

import ast
from pathlib import Path

RL = Path(__file__).resolve().parents[2] / "grape" / "rl"
BASE = {"data", "models", "text", "config", "cli_options", "console", "errors"}
PUBLIC = {"grape.verification.registry", "grape.tools.verifier", "grape.training.resume",
          "grape.training.scoring_defaults"}  # fmt: skip


def test_rl_imports_only_the_base_and_the_public_functions_it_shares():
    borrowed = {}
    for file in RL.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grape."):
                package = node.module.split(".")[1]
                if package not in BASE | {"rl"} and node.module not in PUBLIC:
                    borrowed.setdefault(node.module, []).append(file.name)
    assert not borrowed, borrowed
    assert any("get_verifier" in f.read_text() for f in RL.glob("*.py"))  # the check looked at real imports
