"""grape/rl stands on the base (data, models, text, config, console, errors) and two public functions of
other stages: the verifier registry and the tool-call judgement's reward (TL-Training's IRM)."""

import ast
from pathlib import Path

RL = Path(__file__).resolve().parents[2] / "grape" / "rl"
BASE = {"data", "models", "text", "config", "cli_options", "console", "errors"}
PUBLIC = {"grape.verification.registry", "grape.tools.verifier"}


def test_rl_imports_only_the_base_the_verifier_registry_and_the_tool_call_reward():
    borrowed = {}
    for file in RL.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("grape."):
                package = node.module.split(".")[1]
                if package not in BASE | {"rl"} and node.module not in PUBLIC:
                    borrowed.setdefault(node.module, []).append(file.name)
    assert not borrowed, borrowed
    assert any("get_verifier" in f.read_text() for f in RL.glob("*.py"))  # the check looked at real imports
