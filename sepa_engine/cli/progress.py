"""Progress of long commands (collect, reconcile, load): a bar on a terminal, silence in cron.

The bar goes to stderr, so ``--json`` on stdout stays one clean document, and it is drawn
only when stderr is a terminal, so cron mail and log files never fill with it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TextIO

from sepa_engine.progress import SILENT, Progress


@dataclass
class _Bar:
    bar: Any
    task: Any
    done: int = field(default=0)

    def total(self, count: int | None) -> None:
        self.bar.update(self.task, total=count)

    def advance(self, count: int = 1) -> None:
        self.done += count
        self.bar.update(self.task, advance=count)


def on_terminal(stream: TextIO | None = None) -> bool:
    stream = stream if stream is not None else sys.stderr
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextmanager
def bar(label: str, *, enabled: bool | None = None, stream: TextIO | None = None) -> Iterator[Progress]:
    """A progress bar named ``label`` when stderr is a terminal; otherwise ``SILENT``."""
    show = on_terminal(stream) if enabled is None else enabled
    if not show:
        yield SILENT
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    console = Console(file=stream or sys.stderr)
    with RichProgress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as rich_bar:
        yield _Bar(rich_bar, rich_bar.add_task(label, total=None))
