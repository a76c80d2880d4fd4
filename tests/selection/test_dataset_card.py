"""`grape select` writes a dataset card beside the selection: what, how, counts per source, the scoring model."""

import json

import yaml
from test_select import row

from grape.data.tables import write_rows
from grape.scoring.score import SCORES_SCHEMA
from grape.selection.dataset_card import card_path
from grape.selection.select import select


def _scores(tmp_path, sidecar: dict | None):
    rows = [row("a", 0, "m1", -1.0), row("a", 1, "m2", -0.2), row("b", 0, "m1", -0.5), row("b", 1, "m2", -0.9),
            row("c", 0, "m1", None, status="skipped:empty_response")]  # fmt: skip
    path = write_rows(rows, tmp_path / "scores.parquet", SCORES_SCHEMA)
    if sidecar is not None:
        (tmp_path / "scores.parquet.meta.json").write_text(json.dumps({"settings": sidecar}))
    return path


def _table(card: str) -> dict[str, list[str]]:
    """The per-source table of the card: source -> its cells."""
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in card.splitlines() if line.startswith("| m")]
    return {c[0]: c[1:] for c in cells}


def test_the_card_says_what_was_selected_how_and_by_which_model(tmp_path):
    scores = _scores(tmp_path, {"model": "smollm2-135m-instruct", "template": "chat", "eos": False})
    select(scores, tmp_path / "selected.jsonl", top_k=1)
    card = card_path(tmp_path / "selected.jsonl").read_text()
    assert card_path(tmp_path / "selected.jsonl").name == "selected.jsonl.card.md"
    header = yaml.safe_load(card.split("---")[1])
    assert header["tags"] == ["grape", "sft"] and header["task_categories"] == ["text-generation"]
    assert "# selected.jsonl" in card
    assert "2 responses for supervised fine-tuning, selected by `grape select` from 4 scored candidates (5 in all) " \
           "to 3 instructions" in card  # fmt: skip
    assert "TRL's `prompt-completion` format" in card
    assert "- strategy `grape`: the candidates the target model finds most probable" in card
    assert "- kept per instruction: the top 1" in card
    assert f"- scored by `smollm2-135m-instruct` with template `chat`, EOS not scored, from `{scores}`" in card
    assert "- instructions without an eligible candidate: 1 (listed in the sidecar)" in card
    # a: m2 (-0.2) wins; b: m1 (-0.5) wins
    assert _table(card) == {"m1": ["2", "1", "50.0%", "-0.7500", "-0.5000"],
                            "m2": ["2", "1", "50.0%", "-0.5500", "-0.2000"]}  # fmt: skip
    assert "Mean log-prob per token: -0.3500 selected, -0.6500 over all scored." in card
    assert "`grape sft selected.jsonl -o OUTDIR`" in card


def test_the_card_of_another_strategy_and_of_rows_scored_elsewhere(tmp_path):
    scores = _scores(tmp_path, None)  # no scoring sidecar: the card says it does not know
    select(scores, tmp_path / "sel.parquet", strategy="source:m2", top_k=None, require_correct=False)
    card = card_path(tmp_path / "sel.parquet").read_text()
    assert "- strategy `source:m2`: only the candidates of source `m2`" in card
    assert "- kept per instruction: all eligible" in card
    assert "- scored by `unknown` with template `unknown`" in card
    assert _table(card)["m2"][:2] == ["2", "2"] and _table(card)["m1"][:2] == ["2", "0"]
    assert "grape sft" not in card  # nothing to take the model from


def test_no_card_without_an_output(tmp_path):
    select(_scores(tmp_path, None))
    assert not list(tmp_path.glob("*.card.md"))
