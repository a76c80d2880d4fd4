"""The import graph: stages import the base, and another stage only where they use its public result."""

import ast
from pathlib import Path

GRAPE = Path(__file__).resolve().parents[1] / "grape"
BASE = {"data", "models", "text", "config", "cli_options", "console", "errors"}
STAGES = {"scoring", "selection", "generation", "verification", "report", "training", "evaluation", "rl", "tta",
          "tools", "decoding", "search"}  # fmt: skip
# The real uses of another stage, each through that stage's public function (docs/architecture.md):
ALLOWED = {
    ("evaluation", "generation"),  # eval answers with the hf generation backend
    ("evaluation", "verification"),  # and judges the answers with a verifier
    ("evaluation", "decoding"),  # or answers with a reward-guided decoder (EvalSettings.decode)
    ("report", "selection"),  # the report marks the GRAPE choice when no selection is given
    ("report", "evaluation"),  # and compares arms' eval results with the evaluation's paired test (McNemar)
    ("rl", "verification"),  # PPO's reward comes from a verifier
    ("rl", "training"),  # rl resumes by sft's rule and takes its model from the questions' sidecar as sft does
    ("training", "scoring"),  # dpo's reference log-probs are a scoring job (training/reference_pass.py)
    ("verification", "tools"),  # the tool-call verifier judges calls with grape.tools
    ("rl", "tools"),  # and TL-Training's error-category reward (IRM) comes from the same judgement
    ("search", "tools"),  # iTool's search rewards calls with the tool-call judgement and reads gold calls
    ("search", "scoring"),  # and its deficiency step is the scorer's fit of the gold answers
}


def _package_imports() -> dict[tuple[str, str], list[str]]:
    """(importing package, imported package) -> the files with such an import."""
    edges: dict[tuple[str, str], list[str]] = {}
    for file in GRAPE.rglob("*.py"):
        source = file.relative_to(GRAPE).parts[0].removesuffix(".py")
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            names = [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            names += [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                parts = name.split(".")
                if parts[0] == "grape" and len(parts) > 1 and parts[1] != source:
                    edges.setdefault((source, parts[1]), []).append(str(file.relative_to(GRAPE)))
    return edges


def test_stages_do_not_borrow_from_each_other():
    edges = _package_imports()
    borrowed = {edge: files for edge, files in edges.items() if edge[0] in STAGES and edge[1] in STAGES}
    assert set(borrowed) <= ALLOWED, {e: f for e, f in borrowed.items() if e not in ALLOWED}


def test_the_base_imports_no_stage():
    edges = _package_imports()
    upward = {edge: files for edge, files in edges.items() if edge[0] in BASE and edge[1] not in BASE}
    assert not upward, upward


def test_every_stage_owns_its_settings_module():
    for stage in STAGES:
        assert (GRAPE / stage / "settings.py").is_file(), f"grape/{stage}/settings.py"


def test_the_command_line_parser_imports_no_torch():
    """`grape --help` stays quick: every command registers its flags from torch-free modules."""
    import subprocess
    import sys

    code = (
        "import sys, grape.cli; grape.cli.build_parser(); print(sorted({'torch', 'transformers'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out
