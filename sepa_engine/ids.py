"""Identifier sources for message ids.

Injected wherever a file is made, so the same input gives the same bytes in tests
(``SequentialIds``) while production ids stay unique across runs and processes
(``TimestampIds``: time to the second plus 40 random bits; the ledger's unique constraint
on MsgId is the final guard).
"""

from __future__ import annotations

import secrets
from typing import Protocol

from sepa_engine.clock import Clock

# PmtInfId = MsgId + "-" + block number (4 digits) must stay within 35 characters.
MESSAGE_ID_MAX = 30


class IdSource(Protocol):
    def message_id(self) -> str: ...


class SequentialIds:
    def __init__(self, prefix: str = "MSG", start: int = 1) -> None:
        self._prefix = prefix
        self._next = start

    def message_id(self) -> str:
        value = f"{self._prefix}{self._next:06d}"
        self._next += 1
        return value


class TimestampIds:
    def __init__(self, clock: Clock, prefix: str = "SE") -> None:
        self._clock = clock
        self._prefix = prefix

    def message_id(self) -> str:
        return f"{self._prefix}{self._clock.now():%Y%m%d%H%M%S}{secrets.token_hex(5).upper()}"
