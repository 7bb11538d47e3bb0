"""Identifier sources for message ids.

Injected wherever a file is made, so the same input gives the same bytes in tests
(``SequentialIds``) while production ids stay unique across runs and processes
(``TimestampIds``: time to the second plus 40 random bits; the ledger's unique constraint
on MsgId is the final guard).

The time in a MsgId is the file's own creation time (its CreDtTm), passed in by whoever
makes the file: a run "as of" another business date once stamped the wall clock in the MsgId
and the run's date in CreDtTm, two clocks in one header (issue 14, item 10).
"""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Protocol

from sepa_engine.clock import Clock

# PmtInfId = MsgId + "-" + block number (4 digits) must stay within 35 characters.
MESSAGE_ID_MAX = 30


class IdSource(Protocol):
    def message_id(self, at: dt.datetime | None = None) -> str:
        """A new MsgId for a file created ``at`` (its CreDtTm); ``None`` = the source's own now."""
        ...


class SequentialIds:
    def __init__(self, prefix: str = "MSG", start: int = 1) -> None:
        self._prefix = prefix
        self._next = start

    def message_id(self, at: dt.datetime | None = None) -> str:
        value = f"{self._prefix}{self._next:06d}"
        self._next += 1
        return value


class TimestampIds:
    def __init__(self, clock: Clock, prefix: str = "SE") -> None:
        self._clock = clock
        self._prefix = prefix

    def message_id(self, at: dt.datetime | None = None) -> str:
        stamp = at if at is not None else self._clock.now()
        return f"{self._prefix}{stamp:%Y%m%d%H%M%S}{secrets.token_hex(5).upper()}"
