import json
import re
from html.parser import HTMLParser

import pytest

from grape.cli import main
from grape.data.tables import read_table_rows, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.report import build_report, write_report
from grape.report.collect import instruction_text
from grape.scoring.assemble import SCORES_SCHEMA
from grape.selection.select import select


def test_report_names_every_source_with_its_counts(scores, tmp_path):
    html = write_report(scores, None, tmp_path / "report.html").read_text()
    sources = html_table(html, "sources")
    assert sources[0] == ["source", "candidates", "scored", "chosen", "share", "mean fit", "mean tokens"]
    assert sources[1:] == [
        ["alpha", "4", "4", "2", "50.0%", "-0.8750", "8"],
        ["beta", "4", "4", "1", "25.0%", "-0.6775", "14"],
        ["gamma", "4", "3", "1", "25.0%", "-0.9167", "32"],
    ]
    cards = _cards(html)
    assert (
        cards["instructions"] == "4"
        and cards["chosen"] == "4"
        and cards["input rows not read (malformed, or without a valid id)"] == "1"
    )
    assert cards["candidates (11 scored, 1 skipped)"] == "12"
    assert "instructions with no correct candidate" not in cards  # nothing was verified
    assert "none given: the GRAPE choice" in html
    assert ["scores sidecar", "none next to the table: settings unknown"] in html_table(html, "settings")


def test_a_skipped_copy_under_a_duplicate_id_is_not_chosen_and_the_source_table_adds_up(scores, tmp_path):
    """q1 twice (the second copy skipped: duplicate id) and q9 skipped whole (no candidates): the selection's
    (q1, 0) is the scored copy only, and the sources' candidates sum to the card's count."""
    rows = [r for r in read_table_rows(scores) if r["id"] is not None]
    copies = [{**r, "status": "skipped:duplicate_id", "n_tokens": None, "sum_logprob": None, "mean_logprob": None,
               "row": 50 + r["candidate"]} for r in rows if r["id"] == "q1"]  # fmt: skip
    whole = {**dict.fromkeys(SCORES_SCHEMA.names), "id": "q9", "status": "skipped:empty_candidates", "row": 60}
    path = write_rows([*rows, *copies, whole], tmp_path / "scores.parquet", SCORES_SCHEMA)
    select(path, tmp_path / "selected.jsonl")
    html = write_report(path, tmp_path / "selected.jsonl", tmp_path / "report.html").read_text()
    cards = _cards(html)
    assert cards["chosen"] == "4" and cards["candidates (11 scored, 4 skipped)"] == "15"
    sources = {row[0]: row[1:4] for row in html_table(html, "sources")[1:]}
    assert sources == {"alpha": ["5", "4", "2"], "beta": ["5", "4", "1"], "gamma": ["5", "3", "1"]}


def test_margins_table_smallest_first_with_texts_side_by_side(scores, tmp_path):
    html = write_report(scores, None, tmp_path / "report.html").read_text()
    rows = html_table(html, "margins")[1:]
    assert [(r[0], r[1], r[2]) for r in rows] == [("1", "q4", "0.0100"), ("2", "q1", "0.0500"),
                                                  ("3", "q2", "0.7000"), ("4", "q3", "1.0000")]  # fmt: skip
    best, second = rows[0][4], rows[0][5]
    assert best.startswith("alpha chosen fit -0.3000 · 7 tokens") and second.startswith("beta fit -0.3100 · 9 tokens")
    # responses are shown as text, never as markup
    assert "&lt;b&gt;alpha answers q4&lt;/b&gt;" in html and "<b>alpha answers q4</b>" not in html
    assert rows[0][3] == "Instruction q4: say something"
    assert 'id="margin-search"' in html


def test_figures_carry_the_data(verified_scores):
    report = build_report(verified_scores)
    assert set(report.figures) == {"chosen_share", "fit_by_source", "fit_vs_length", "correct_share"}
    shares = {trace.name: list(trace.y) for trace in report.figures["chosen_share"].data}
    assert shares == {"alpha": [0.5], "beta": [0.25], "gamma": [0.25]}
    correct = {trace.name: list(trace.y) for trace in report.figures["correct_share"].data}
    assert correct == {"alpha": [0.5], "beta": [0.25], "gamma": [pytest.approx(1 / 3)]}
    scatter = report.figures["fit_vs_length"].data
    chosen = [t for t in scatter if t.name == "chosen"][0]
    assert sorted(zip(chosen.x, chosen.y, strict=True)) == [(5, -0.2), (7, -0.3), (12, -1.0), (30, -0.45)]
    assert sum(len(t.x) for t in scatter if t.name != "chosen") == 11
    assert "Pearson r = " in report.figures["fit_vs_length"].layout.title.text


def test_verified_report_counts_instructions_without_correct(verified_scores, tmp_path):
    html = write_report(verified_scores, None, tmp_path / "report.html").read_text()
    assert _cards(html)["instructions with no correct candidate"] == "2"
    assert [row[-1] for row in html_table(html, "sources")[1:]] == ["2/4", "1/4", "1/3"]
    assert 'id="figure-correct_share"' in html


def test_report_is_self_contained(scores, tmp_path):
    html = write_report(scores, None, tmp_path / "report.html").read_text()
    assert not re.search(r"<(script|link)[^>]+(src|href)=", html)  # nothing loaded from elsewhere
    assert html.count('class="plotly-graph-div"') == 3
    assert "Plotly.newPlot" in html and len(html) > 3_000_000  # plotly.js itself is inline


def test_given_selection_is_marked_and_its_settings_shown(scores, tmp_path):
    selected = tmp_path / "lowest.jsonl"
    select(scores, selected, strategy="lowest")  # q1 alpha, q2 gamma, q3 alpha, q4 gamma
    report = build_report(scores, selected)
    assert report.sources.set_index("source")["chosen"].to_dict() == {"alpha": 2, "gamma": 2, "beta": 0}
    html = report.html()
    assert f"{selected} (lowest)" in html
    assert ["selection strategy", "lowest"] in html_table(html, "settings")


def test_sidecar_settings_are_shown(scores, tmp_path):
    write_sidecar(scores, {"stage": "score", "input": "pool.jsonl", "seconds": 12.3,
                           "settings": {"model": "gemma-3-270m", "template": "paper", "eos": True, "layout": "long"},
                           "model": {"spec": "gemma-3-270m", "dtype": "float32", "n_parameters": 268098176},
                           "counts": {"rows": 13, "scored": 11}})  # fmt: skip
    html = write_report(scores, None, tmp_path / "report.html").read_text()
    settings = dict(row for row in html_table(html, "settings") if len(row) == 2)
    assert settings["input"] == "pool.jsonl" and settings["model"] == "gemma-3-270m"
    assert settings["template"] == "paper" and settings["EOS appended"] == "yes" and settings["dtype"] == "float32"
    assert settings["parameters"] == "268.1M" and settings["rows by status"] == "rows 13, scored 11"
    assert settings["scoring time"] == "12 s" and settings["selection strategy"] == "grape"
    assert "scores sidecar" not in settings


def test_mistakes_are_grape_errors(scores, tmp_path):
    with pytest.raises(GrapeError, match="x.jsonl, row 1, field 'source': no such field: not a scores table"):
        write_report(write_rows([{"id": "a", "candidate": 0}], tmp_path / "x.jsonl"), None, tmp_path / "r.html")
    with pytest.raises(GrapeError, match="no rows"):
        write_report(write_rows([], tmp_path / "empty.jsonl"), None, tmp_path / "r.html")
    foreign = write_rows([{"id": "zz", "candidate": 0, "prompt": "p", "completion": "c"}], tmp_path / "sel.jsonl")
    with pytest.raises(GrapeError, match="1 selected rows are not in .*another scores table"):
        write_report(scores, foreign, tmp_path / "r.html")
    no_candidate = write_rows([{"prompt": "p", "completion": "c"}], tmp_path / "plain.jsonl")
    with pytest.raises(GrapeError, match="needs the columns 'id' and 'candidate'"):
        write_report(scores, no_candidate, tmp_path / "r.html")
    assert not (tmp_path / "r.html").exists()


def test_cli_writes_report_and_reports_mistakes_in_one_line(scores, tmp_path, capsys):
    out = tmp_path / "sub" / "report.html"
    assert main(["report", str(scores), "-o", str(out)]) == 0
    assert out.is_file() and "report written to" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing.parquet"), "-o", str(out)]) == 2
    assert "no such file" in capsys.readouterr().err


def test_selection_rows_round_trip_through_jsonl(scores, tmp_path):
    """A selection written as JSONL by `grape select` carries id and candidate as the report needs."""
    selected = tmp_path / "sel.jsonl"
    select(scores, selected)
    assert {(r["id"], r["candidate"]) for r in read_table_rows(selected)} == {("q1", 2), ("q2", 0), ("q3", 1),
                                                                             ("q4", 0)}  # fmt: skip
    assert json.loads(selected.read_text().splitlines()[0])["source"] == "gamma"


def test_nothing_scored_still_gives_a_report(tmp_path):
    rows = [{"id": "a", "candidate": 0, "source": "s", "n_tokens": None, "mean_logprob": None, "status":
             "skipped:too_long", "prompt": "p", "messages": None, "response": "r"}]  # fmt: skip
    html = write_report(write_rows(rows, tmp_path / "s.jsonl"), None, tmp_path / "r.html").read_text()
    cards = _cards(html)
    assert cards["candidates (0 scored, 1 skipped)"] == "1" and cards["fit–length Pearson r"] == "n/a"
    assert cards["instructions with nothing chosen"] == "1"
    assert html_table(html, "margins") == [["#", "id", "margin", "instruction", "best", "second best"]]


def test_chat_rows_show_the_last_user_message():
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "first"},
                {"role": "assistant", "content": "ok"}, {"role": "user", "content": "second"}]  # fmt: skip
    assert instruction_text({"prompt": None, "messages": json.dumps(messages)}) == "second"
    assert instruction_text({"prompt": "plain", "messages": None}) == "plain"


def _cards(html: str) -> dict[str, str]:
    """Summary cards as {label: value}."""
    pairs = re.findall(r'<div class="value">([^<]*)</div><div class="label">([^<]*)</div>', html)
    return {label: value.strip() for value, label in pairs}


def html_table(html: str, table_id: str) -> list[list[str]]:
    """The rows of table ``table_id`` as lists of cell texts (header row included)."""
    parser = _TableParser(table_id)
    parser.feed(html)
    return parser.rows


class _TableParser(HTMLParser):
    def __init__(self, table_id: str):
        super().__init__()
        self.table_id, self.inside, self.rows, self.cell = table_id, False, [], None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.inside = dict(attrs).get("id") == self.table_id
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.inside and tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)
