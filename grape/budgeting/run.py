"""The budget stage: for each SFT share and seed, spend a fixed budget on SFT examples and preference pairs drawn
from two pools, run SFT then DPO, evaluate, and write one results row per cell.

Every cell is planned and its draw checked (grape.budgeting.draw) before the first one trains, so that a pool too
small for the last cell stops the run at once, not after hours. The cells then run in order (shares as given,
each over the seeds); each writes its row when done (grape.budgeting.cell), and after each the output folder's
``results.jsonl`` (one row per finished cell, in plan order) and ``summary.md`` (by share, the mean over seeds)
are written anew from the cells' rows, together with the rows of cells that earlier runs into the same folder
finished with the same settings and data (other shares or seeds: a run of `--shares 0.25` after one of
`--shares 0,0.1` adds a row, it does not replace the table). A re-run into the same folder skips the finished
cells, so a killed run loses at most the cell in progress, and of that only what its stages cannot resume.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from grape.budgeting.cell import DONE, Cell, cell_folder, finished_row, identity_changes, rows_hash, run_cell
from grape.budgeting.draw import draw_cell, instruction_keys
from grape.budgeting.results import summary_markdown
from grape.budgeting.settings import BudgetSettings, check_budget
from grape.config import settings_dict, with_overrides, write_settings
from grape.console import console
from grape.data.read_rows import source_name
from grape.data.tables import read_table_rows, write_rows
from grape.errors import GrapeError
from grape.training.scoring_defaults import selection_meta, with_scoring_defaults
from grape.training.settings import SFTSettings

RESULTS, SUMMARY, CONFIG_NAME = "results.jsonl", "summary.md", "grape-budget.yaml"
HELDOUT_CANDIDATES = "heldout-candidates.jsonl"
# Settings a cell's key leaves out: adding a share or seed keeps the finished cells; keep_models changes no result.
NOT_IN_KEY = ("shares", "seeds", "keep_models")


def budget(
    sft_pool: str | Path | list[dict[str, Any]],
    pairs: str | Path | list[dict[str, Any]],
    data: str | Path,
    output_dir: str | Path,
    settings: BudgetSettings | None = None,
    heldout: str | Path | list[dict[str, Any]] | None = None,
    **overrides: Any,
) -> list[dict[str, Any]]:
    """Run every (share, seed) cell not finished yet in ``output_dir``; return the rows of all finished cells (this
    run's, and those earlier runs into ``output_dir`` finished with the same settings), by share, then seed.

    ``sft_pool``: prompt/completion (or messages) rows, as `grape select` writes them; ``pairs``: prompt/chosen/
    rejected rows, as `grape pairs` writes them; ``data``: the items `grape eval` answers; ``heldout``: optional
    prompt/completion rows whose responses each final model scores (held-out log-likelihood). ``overrides`` set
    fields of `BudgetSettings`, e.g. ``budget(..., budget=256, shares=[0, 0.1, 1], seeds=[0, 1])``.
    """
    settings = with_overrides(BudgetSettings, settings, overrides)
    check_budget(settings)
    out = Path(output_dir)
    files = (source_name(sft_pool), source_name(pairs))
    sft_rows, pair_rows = read_table_rows(sft_pool), read_table_rows(pairs)
    sft_keys, pair_keys = instruction_keys(sft_rows, pair_rows, files)
    _check_inputs(sft_rows, pair_rows, files, data, settings)
    settings = _resolved(settings, sft_pool)
    base = _identity_base(settings, data, heldout)
    sft_at, pair_at = {key: i for i, key in enumerate(sft_keys)}, {key: i for i, key in enumerate(pair_keys)}
    cells = []
    for share in settings.shares:
        for seed in settings.seeds:
            draw = draw_cell(sft_keys, pair_keys, settings.budget, share, settings.pair_cost, seed, files)
            drawn_sft = [sft_rows[sft_at[key]] for key in draw.sft]
            drawn_pairs = [pair_rows[pair_at[key]] for key in draw.pairs]
            identity = {**base, "share": share, "seed": seed, "sft_rows": rows_hash(drawn_sft),
                        "pair_rows": rows_hash(drawn_pairs)}  # fmt: skip
            identity = json.loads(json.dumps(identity, default=str))  # as it reads back from cell.json
            cells.append(Cell(draw, cell_folder(out, share, seed), drawn_sft, drawn_pairs, identity))
    finished = {cell.folder: finished_row(cell) for cell in cells}  # a cell begun otherwise stops the run here
    earlier = finished_elsewhere(out, base, set(finished))
    rerun = f"grape budget {files[0]} {files[1]} --data {source_name(data)} -o {out} --config {out / CONFIG_NAME}"
    rerun += f" --heldout {source_name(heldout)}" if heldout is not None else ""
    write_settings(settings, out / CONFIG_NAME, header=rerun)
    candidates = _heldout_candidates(heldout, out / HELDOUT_CANDIDATES) if heldout is not None else None
    for number, cell in enumerate(cells, start=1):
        title = f"cell {number}/{len(cells)}: share {cell.draw.share:g}, seed {cell.draw.seed}"
        if finished[cell.folder] is not None:
            console.print(f"[dim]• {title}: done[/]", highlight=False)
            continue
        console.rule(f"{title} ({cell.draw.n_sft} SFT examples, {cell.draw.n_pairs} pairs)", align="left")
        started = time.time()
        finished[cell.folder] = run_cell(cell, settings, data, candidates, (sft_pool, pairs))
        console.print(f"{title}: {time.time() - started:.0f} s", highlight=False)
        _write_tables(_by_cell(earlier, finished), out, settings)
    rows = _by_cell(earlier, finished)
    _write_tables(rows, out, settings)
    return rows


def finished_elsewhere(out: Path, base: dict[str, Any], planned: set[Path]) -> list[dict[str, Any]]:
    """The rows of cells in ``out`` that this run does not plan (other shares or seeds) and that finished with
    the same settings and evaluation data (``base``); a finished cell made otherwise is left out, and said so."""
    wanted = json.loads(json.dumps(base, default=str))  # as identities read back from cell.json
    rows, other = [], []
    for done in sorted(out.glob(f"share-*-seed-*/{DONE}")):
        if done.parent in planned:
            continue
        saved = json.loads(done.read_text(encoding="utf-8"))
        identity = saved.get("identity") or {}
        if not identity_changes({key: identity.get(key) for key in wanted}, wanted):
            rows.append(saved["row"])
        else:
            other.append(done.parent.name)
    if other:
        console.print(f"[yellow]note:[/] {len(other)} finished cell(s) in {out} were made with other settings or "
                      f"data and are not in {RESULTS}: {', '.join(other)}", highlight=False)  # fmt: skip
    return rows


def _by_cell(earlier: list[dict[str, Any]], finished: dict[Path, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Every finished cell's row, by share, then seed."""
    rows = earlier + [row for row in finished.values() if row is not None]
    return sorted(rows, key=lambda row: (row["share"], row["seed"]))


def _check_inputs(sft_rows: list, pair_rows: list, files: tuple[str, str], data: Any, settings: BudgetSettings) -> None:
    """Every row of both pools and the evaluation items, read as their stages will read them: a bad row stops the
    run before the first cell trains, not when the cell that draws it comes, hours later."""
    from grape.data.pool import read_pool
    from grape.training.dataset import prompt_and_response
    from grape.training.preference import read_pairs

    for number, row in enumerate(sft_rows, start=1):
        prompt_and_response(row, files[0], number)
    read_pairs(pair_rows, files[1])
    read_pool(data, settings.eval.columns)  # its rows, or a one-line error (none at all is one too)


def _resolved(settings: BudgetSettings, sft_pool: Any) -> BudgetSettings:
    """Model, template and eos as the SFT pool was scored (its sidecar) where not given, as `grape sft` takes them."""
    scored, warnings = with_scoring_defaults(SFTSettings(model=settings.model, template=settings.template,
                                                         eos=settings.eos), selection_meta(sft_pool))  # fmt: skip
    for warning in warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    return replace(settings, model=scored.model, template=scored.template, eos=scored.eos)


def _identity_base(settings: BudgetSettings, data: Any, heldout: Any) -> dict[str, Any]:
    """What every cell's key holds besides its own share, seed and drawn rows: the settings (less the list of
    shares and seeds, and keep_models: NOT_IN_KEY) and the evaluation files."""
    kept = {key: value for key, value in settings_dict(settings).items() if key not in NOT_IN_KEY}
    return {"settings": kept, "data": _fingerprint(data), "heldout": _fingerprint(heldout) if heldout else None}


def _fingerprint(source: Any) -> str:
    """A file's content hash, rows' in memory (a Hub dataset id or a folder: its name)."""
    if isinstance(source, (str, Path)) and Path(source).is_file():
        return hashlib.sha256(Path(source).read_bytes()).hexdigest()[:16]
    return rows_hash(read_table_rows(source)) if isinstance(source, list) else str(source)


def _heldout_candidates(heldout: Any, path: Path) -> Path:
    """The held-out rows as grouped candidates for `grape score`: one candidate per row, its gold response."""
    from grape.training.dataset import prompt_and_response

    file, rows = source_name(heldout), read_table_rows(heldout)
    if not rows:
        raise GrapeError(f"{file}: no held-out rows")
    grouped = []
    for number, row in enumerate(rows, start=1):
        prompt, response = prompt_and_response(row, file, number)
        grouped.append({"id": str(row.get("id", number)), "prompt": prompt,
                        "candidates": [{"text": response, "source": "heldout"}]})  # fmt: skip
    if not path.is_file() or read_table_rows(path) != grouped:
        write_rows(grouped, path)
    return path


def _write_tables(rows: list[dict[str, Any]], out: Path, settings: BudgetSettings) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_rows(rows, out / RESULTS)
    (out / SUMMARY).write_text(summary_markdown(rows, settings.budget, settings.pair_cost), encoding="utf-8")
