"""One cell of a budget run: SFT on the drawn examples, then DPO on the drawn pairs, then `grape eval`.

A cell's folder (``share-<f>-seed-<s>/``) holds the drawn rows (``sft.jsonl``, ``pairs.jsonl``, each with its pool's
sidecar, so that sft and dpo render them as they were scored), the stages' own outputs (``sft/``, ``dpo/``,
``eval.jsonl`` and its sidecar, ``heldout.parquet``), ``cell.started.json`` (the cell's key, written first) and
``cell.json`` (its results row, written last: its presence means "finished").

Resuming: a finished cell is read back, never rerun; in a cell cut short, each finished stage (``grape-sft.json``,
``grape-dpo.json``, the eval sidecar) is reused, and an interrupted sft or dpo continues from its checkpoints, the
reference pass and held-out scoring from their parts; a finished stage's checkpoints are deleted (nothing resumes
it). A cell begun with other settings or another draw is an error naming what differs, never silently mixed.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from grape.budgeting.draw import Draw, keys_hash
from grape.budgeting.results import format_metrics, heldout_metrics
from grape.budgeting.settings import BudgetSettings
from grape.config import settings_dict
from grape.data.tables import read_sidecar, read_table_rows, write_atomically, write_rows, write_sidecar
from grape.errors import GrapeError
from grape.pipeline.keys import changed_keys
from grape.training.scoring_defaults import selection_meta

STARTED, DONE = "cell.started.json", "cell.json"


@dataclass(frozen=True)
class Cell:
    draw: Draw
    folder: Path
    sft_rows: list[dict[str, Any]]  # the drawn rows of the SFT pool, in draw order
    pair_rows: list[dict[str, Any]]
    identity: dict[str, Any]  # what makes the cell: settings, share, seed, drawn rows, eval data (cell_identity)

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps(self.identity, sort_keys=True, default=str).encode()).hexdigest()[:16]


def cell_folder(output_dir: Path, share: float, seed: int) -> Path:
    return output_dir / f"share-{share:g}-seed-{seed}"


def rows_hash(rows: list[dict[str, Any]]) -> str:
    return hashlib.sha256(json.dumps(rows, sort_keys=True, default=str).encode()).hexdigest()[:16]


def finished_row(cell: Cell) -> dict[str, Any] | None:
    """The results row of a cell finished with this key; None if it has not finished (or not begun).
    A cell begun or finished with another key is an error naming the keys that differ."""
    for name in (DONE, STARTED):
        path = cell.folder / name
        if path.is_file():
            saved = json.loads(path.read_text(encoding="utf-8"))
            same = saved.get("key") == cell.key  # else compare: a setting added since may leave it the same cell
            changed = [] if same else identity_changes(saved.get("identity") or {}, cell.identity)
            if changed:
                raise GrapeError(f"{cell.folder}: begun with other settings or another draw ({', '.join(changed)}); "
                                 "use another output folder, or remove this cell's folder to redo it")  # fmt: skip
            return saved["row"] if name == DONE else None
    return None


def run_cell(cell: Cell, settings: BudgetSettings, data: str | Path, heldout: Path | None, pools: tuple) -> dict:
    """Train and evaluate ``cell`` (``settings`` resolved: model, template and eos set); return its results row.

    ``pools`` are the SFT and pair pool files, whose sidecars the drawn rows keep.
    """
    from grape.evaluation.evaluate import evaluate
    from grape.training.dpo import dpo
    from grape.training.sft import sft

    folder, draw = cell.folder, cell.draw
    folder.mkdir(parents=True, exist_ok=True)
    _write_json(folder / STARTED, {"key": cell.key, "identity": cell.identity})
    model, row = settings.model, _counts_row(cell, settings)
    stages = [
        ("sft", sft, settings.sft, cell.sft_rows, pools[0], draw.n_sft,
         ("examples", "steps", "loss_first", "loss_last", "seconds")),
        ("dpo", dpo, settings.dpo, cell.pair_rows, pools[1], draw.n_pairs,
         ("pairs", "steps", "loss_first", "loss_last", "reward_accuracy_last", "seconds")),
    ]  # fmt: skip
    for stage, train, stage_settings, drawn, pool, count, keys in stages:
        if not count:
            continue
        rows = _drawn_file(drawn, folder / ("sft.jsonl" if stage == "sft" else "pairs.jsonl"), pool, draw)
        done = folder / stage / f"grape-{stage}.json"
        if not done.is_file():
            train(rows, folder / stage, replace(stage_settings, model=model, template=settings.template,
                                                eos=settings.eos, seed=draw.seed))  # fmt: skip
        _drop_checkpoints(folder / stage)
        model = str(folder / stage)
        row[stage] = _stage_metrics(done, keys)
    row["model"] = model
    output = folder / "eval.jsonl"
    summary = read_sidecar(output).get("summary") if output.is_file() else None
    if summary is None:
        _, summary = evaluate(data, output, replace(settings.eval, model=model, template=settings.template))
    row.update({key: summary[key] for key in ("items", "judged", "correct", "accuracy", "ci95", "unjudged",
                                              "mean_response_tokens", "finish_reasons")})  # fmt: skip
    row.update(format_metrics(read_table_rows(output)))
    if heldout is not None:
        row.update(_heldout(heldout, folder / "heldout.parquet", model, settings))
    _write_json(folder / DONE, {"key": cell.key, "identity": cell.identity, "row": row})
    if not settings.keep_models:
        _delete_weights(folder)
    return row


def _counts_row(cell: Cell, settings: BudgetSettings) -> dict[str, Any]:
    draw = cell.draw
    stages = [name for name, n in (("sft", draw.n_sft), ("dpo", draw.n_pairs)) if n]
    return {"share": draw.share, "seed": draw.seed, "budget": settings.budget, "pair_cost": settings.pair_cost,
            "n_sft": draw.n_sft, "n_pairs": draw.n_pairs, "units": draw.n_sft + draw.n_pairs * settings.pair_cost,
            "sft_ids_hash": keys_hash(draw.sft), "pair_ids_hash": keys_hash(draw.pairs),
            "trained": "+".join(stages) or "none", "cell": cell.folder.name}  # fmt: skip


def _drawn_file(rows: list[dict[str, Any]], path: Path, pool: Any, draw: Draw) -> Path:
    """The drawn rows as a file beside a copy of the pool's sidecar (how they were scored, for sft and dpo)."""
    if not path.is_file() or read_table_rows(path) != rows:
        write_rows(rows, path)
        meta = {key: value for key, value in selection_meta(pool).items() if key != "versions"}
        write_sidecar(path, {**meta, "budget_draw": {"pool": str(pool), "share": draw.share, "seed": draw.seed,
                                                     "rows": len(rows)}})  # fmt: skip
    return path


def _stage_metrics(done: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    metrics = json.loads(done.read_text(encoding="utf-8"))["metrics"]
    return {key: metrics.get(key) for key in keys}


def _heldout(candidates: Path, output: Path, model: str, settings: BudgetSettings) -> dict[str, Any]:
    """Score the held-out gold responses with the cell's final model (parts resume) and average their fit."""
    from grape.scoring.score import score

    rows = score(candidates, output, model=model, template=settings.template, eos=settings.eos,
                 dtype=settings.eval.dtype, device=settings.eval.device)  # fmt: skip
    return heldout_metrics(rows)


def _drop_checkpoints(stage: Path) -> None:
    """A finished stage's checkpoints: a budget never resumes a finished stage, and they are three times its model
    (gemma-3-270m's: 1 GB of weights and 2 GB of optimizer state)."""
    shutil.rmtree(stage / "checkpoints", ignore_errors=True)


def _delete_weights(folder: Path) -> None:
    """A finished cell's model weights and checkpoints (``keep_models: false``); its other files stay."""
    for stage in ("sft", "dpo"):
        _drop_checkpoints(folder / stage)
        for weights in [*(folder / stage).glob("*.safetensors"), *(folder / stage).glob("adapter/*.safetensors")]:
            weights.unlink()


def _write_json(path: Path, value: dict[str, Any]) -> None:
    text = json.dumps(value, indent=2, default=str) + "\n"
    write_atomically(path, lambda handle: handle.write(text.encode("utf-8")))


def identity_changes(saved: dict[str, Any], current: dict[str, Any]) -> list[str]:
    """The dotted keys in which a cell's saved identity and the current one differ, leaving out a setting that the
    saved identity lacks and that is at its default now: a setting added to grape after the cell was made (its
    default is the behaviour the cell was made with). Empty: the same cell."""
    defaults = {"settings": json.loads(json.dumps(settings_dict(BudgetSettings()), default=str))}
    return [key for key in changed_keys(saved, current)
            if _at(saved, key) is not _MISSING or _at(current, key) != _at(defaults, key)]  # fmt: skip


_MISSING = object()


def _at(mapping: dict[str, Any], dotted: str) -> Any:
    """The value at a dotted key of nested mappings, or _MISSING."""
    value: Any = mapping
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value
