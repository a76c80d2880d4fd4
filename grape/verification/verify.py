"""The verify stage: add ``correct`` (true/false/null) and ``verify_reason`` to every candidate.

Output is the grouped layout; ``grape score`` carries ``correct`` into the scores table, where
``grape select --require-correct`` uses it. Candidates are checked in a thread pool: the `code`
verifier spends its time waiting on sandboxed subprocesses.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from grape.config import with_overrides
from grape.console import progress_bar
from grape.data.pool import SKIP_KEY, Row, item_of, read_pool
from grape.data.read_rows import source_name
from grape.data.tables import write_rows, write_sidecar
from grape.verification.registry import get_verifier
from grape.verification.settings import VerifySettings, sandbox_options
from grape.verification.settings import check as check_settings
from grape.verification.verdict import Verdict, Verifier


@dataclass
class VerifyCounts:
    correct: int = 0
    incorrect: int = 0
    unknown: int = 0  # correct is null: no gold answer or tests, or no text to check
    reasons: dict[str, int] = field(default_factory=dict)  # the most common reasons for false


def verify(
    input: str | Path,
    output: str | Path | None = None,
    settings: VerifySettings | None = None,
    **overrides: Any,
) -> tuple[list[Row], dict[str, VerifyCounts]]:
    """Judge every candidate of ``input``; return (grouped rows, counts per source) and write them if asked.

    ``overrides`` set fields of `VerifySettings`, e.g. ``verify("pool.jsonl", "out.jsonl", verifier="number")``;
    ``verifier`` may also be a callable ``(text, item) -> Verdict``. ``unsafe_sandbox``: let the `code`
    verifier run without a wall where none can be built (docs/security.md); ``sandbox_timeout`` (seconds) and
    ``sandbox_memory_mb``: its limits per check. ``limit``: only the first N instructions.
    """
    settings = with_overrides(VerifySettings, settings, overrides)
    check_settings(settings)
    started = time.time()
    verifier = settings.verifier
    name = verifier if isinstance(verifier, str) else getattr(verifier, "__name__", "custom")
    options = sandbox_options(settings) if name == "code" else {}
    check = get_verifier(verifier, **options) if isinstance(verifier, str) else verifier
    workers = settings.workers or (min(8, os.cpu_count() or 1) if name == "code" else 1)
    every = read_pool(input, settings.columns, settings.layout, settings.on_error, settings.split,
                      settings.subset, settings.revision)  # fmt: skip
    rows = every[: settings.limit]  # the whole input is read and checked; a limit keeps its first N instructions
    jobs = [(row, cand) for row in rows if not row.get(SKIP_KEY) for cand in row["candidates"]]
    with progress_bar() as bar, ThreadPoolExecutor(max_workers=workers) as pool:
        task = bar.add_task(f"Verifying ({name})", total=len(jobs), rate="")
        verdicts = []
        for verdict in pool.map(lambda job: _judge(check, *job), jobs):
            verdicts.append(verdict)
            bar.update(task, advance=1, rate=f"{len(verdicts) / max(time.time() - started, 1e-9):,.1f}/s")
    counts: dict[str, VerifyCounts] = defaultdict(VerifyCounts)
    for (_, cand), verdict in zip(jobs, verdicts, strict=True):
        cand["correct"], cand["verify_reason"] = verdict.correct, verdict.reason
        _count(counts[str(cand.get("source"))], verdict)
    if output is not None:
        write_rows(rows, output)
        sandbox = {"sandbox": check.sandbox} if hasattr(check, "sandbox") else {}  # the code verifier's mode, limits
        resolved = {**asdict(settings), "verifier": name, "workers": workers}
        if sandbox:
            resolved.update(sandbox_timeout=check.sandbox["timeout_s"], sandbox_memory_mb=check.sandbox["memory_mb"])
        limit = {"limit": {"instructions": len(rows), "of": len(every), "left_out": len(every) - len(rows)}}
        write_sidecar(output, {"stage": "verify", "input": source_name(input), "settings": resolved, **sandbox,
                               **(limit if settings.limit is not None else {}),
                               "counts": {k: vars(v) for k, v in counts.items()},
                               "seconds": round(time.time() - started, 2)})  # fmt: skip
    return rows, dict(counts)


def _judge(check: Verifier, row: Row, candidate: Row) -> Verdict:
    text = candidate.get("text")
    if not isinstance(text, str) or not text.strip():
        return Verdict(None, "no response text")
    return check(text, item_of(row))


def _count(counts: VerifyCounts, verdict: Verdict) -> None:
    if verdict.correct is None:
        counts.unknown += 1
    elif verdict.correct:
        counts.correct += 1
    else:
        counts.incorrect += 1
        kind = verdict.reason.split(":")[0][:60]  # "wrong answer: 20 != 27" is of kind "wrong answer"
        counts.reasons[kind] = counts.reasons.get(kind, 0) + 1
