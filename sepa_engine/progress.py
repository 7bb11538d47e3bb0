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
