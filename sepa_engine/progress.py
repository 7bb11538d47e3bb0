"""How a long service (collection, reconciliation, load) tells its caller how far it got.

Services take an optional ``progress`` argument and call ``total(n)`` once the size is
known and ``advance(n)`` as items are done. They never draw anything: the command line
decides whether a bar is shown (``cli/progress.py``: on a terminal only).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def total(self, count: int | None) -> None: ...

    def advance(self, count: int = 1) -> None: ...


class Silent:
    """What a service gets when nobody watches: every call does nothing."""

    def total(self, count: int | None) -> None:
        return None

    def advance(self, count: int = 1) -> None:
        return None


SILENT: Progress = Silent()


class Rerunnable:
    """The progress of work that may be run again whole (``Database.run_in_transaction``):
    each run counts from zero (``run()`` starts one), and the caller hears only what goes past
    the furthest an earlier run reached. A bar then neither passes its total nor goes back when
    a file PostgreSQL undid is applied again."""

    def __init__(self, progress: Progress) -> None:
        self._progress = progress
        self._furthest = 0
        self._done = 0

    def run(self) -> Progress:
        self._done = 0
        return self

    def total(self, count: int | None) -> None:
        self._progress.total(count)

    def advance(self, count: int = 1) -> None:
        self._done += count
        if self._done > self._furthest:
            self._progress.advance(self._done - self._furthest)
            self._furthest = self._done
