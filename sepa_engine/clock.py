"""The one clock of the engine.

Everything that needs "now" takes a ``Clock``; the system clock reads ``datetime.now`` so
freezegun can freeze it in tests, and business dates are derived in the configured zone
(Europe/Paris unless told otherwise), never from the machine's local time.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol
from zoneinfo import ZoneInfo

DEFAULT_TIMEZONE = "Europe/Paris"


class Clock(Protocol):
    def now(self) -> dt.datetime:
        """An aware datetime."""
        ...


class SystemClock:
    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc)


class FixedClock:
    """A clock that only moves when told to; for deterministic files and tests."""

    def __init__(self, at: dt.datetime) -> None:
        if at.tzinfo is None:
            raise ValueError("FixedClock needs an aware datetime")
        self._at = at

    def now(self) -> dt.datetime:
        return self._at

    def advance(self, delta: dt.timedelta) -> None:
        self._at += delta


def business_today(clock: Clock, timezone: str = DEFAULT_TIMEZONE) -> dt.date:
    return clock.now().astimezone(ZoneInfo(timezone)).date()
