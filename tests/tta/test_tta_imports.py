"""grape/tta is a vision method on its own: it shares only settings I/O (grape.config, grape.cli_options),
reporting (grape.console, grape.data.tables) and errors with the rest of grape (the brief of issue 18)."""

import ast
from pathlib import Path

TTA = Path(__file__).resolve().parents[2] / "grape" / "tta"
SHARED = {"grape.config", "grape.cli_options", "grape.console", "grape.data.tables", "grape.errors"}


def test_tta_imports_only_settings_reporting_and_errors():
    imported, borrowed = set(), {}
    for file in TTA.glob("*.py"):
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in (n for n in names if n.startswith("grape.")):
                imported.add(name)
                if not name.startswith("grape.tta") and name not in SHARED:
                    borrowed.setdefault(name, []).append(file.name)
    assert not borrowed, borrowed
    assert {"grape.config", "grape.data.tables", "grape.tta.network"} <= imported  # it looked at real imports


def test_the_command_module_does_not_import_torch():
    tree = ast.parse((TTA / "cli.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    modules = {n.module for n in top if isinstance(n, ast.ImportFrom)} | {
        a.name for n in top if isinstance(n, ast.Import) for a in n.names
    }
    assert "torch" not in modules and "grape.tta.run" not in modules and "grape.tta.settings" in modules
