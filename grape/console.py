"""Terminal output: progress bars with rate and ETA, spinners, summary tables (all on stderr)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

console = Console(stderr=True)


@contextmanager
def status(message: str) -> Iterator[None]:
    with console.status(message):
        yield
    console.print(f"[green]✓[/] {message}")


def progress_bar() -> Progress:
    """A bar that shows count, rate (in the caller's unit) and time left."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )


def print_table(title: str, header: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    """The title on a line of its own that never wraps: it often holds a path, which must stay whole to be copied
    (and to be found in a log), however narrow the terminal or the 80 columns rich assumes for a pipe."""
    console.print(title, soft_wrap=True, highlight=False)
    table = Table()
    for name in header:
        table.add_column(name, justify="left" if name == header[0] else "right")
    for row in rows:
        table.add_row(*(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
