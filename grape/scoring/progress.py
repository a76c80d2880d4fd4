"""The scoring progress bar (candidates done, token rate, ETA), shared by the local and the Ray scorer."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from grape.console import progress_bar


@contextmanager
def scoring_progress(total: int, done: int = 0, note: str = "") -> Iterator[Callable[[int, int], None]]:
    """Yield ``advance(candidates, tokens)``. ``done`` candidates were scored by an earlier run: they
    fill the bar but not the rate, so the ETA reflects this run's speed."""
    started, tokens = time.time(), 0
    with progress_bar() as bar:
        task = bar.add_task("Scoring candidates", total=total, completed=done, rate=note)

        def advance(n_candidates: int, n_tokens: int) -> None:
            nonlocal tokens
            tokens += n_tokens
            rate = f"{tokens / max(time.time() - started, 1e-9):,.0f} tok/s"
            bar.update(task, advance=n_candidates, rate=f"{rate} {note}".rstrip())

        yield advance
