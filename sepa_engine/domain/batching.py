"""Grouping collectible debits into files and payment blocks.

Input arrives sorted by ``BlockKey`` (the ledger query orders it so), which lets a file be
streamed: a block ends when the key changes, a file ends when the creditor changes or the
creditor's maximum of transactions per file is reached. Nothing here holds more than the
one debit it is looking at.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from sepa_engine import errors
from sepa_engine.domain.directdebit import BlockKey, Creditor, FileHeader, PaymentBlock
from sepa_engine.ids import MESSAGE_ID_MAX, IdSource

BLOCK_NUMBER_DIGITS = 4
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Collectible(Generic[T]):
    """One debit to place; ``item`` is whatever the caller needs back (a ``DirectDebit`` to
    write, or a request id when the ledger only records the assignment)."""

    key: BlockKey
    creditor: Creditor
    item: T


@dataclass(slots=True)
class PlannedFile(Generic[T]):
    header: FileHeader
    creditor: Creditor
    entries: Iterator[tuple[PaymentBlock, T]]


class _Cursor(Generic[T]):
    """One-item lookahead over the sorted input, checking the order as it goes."""

    def __init__(self, items: Iterable[Collectible[T]]) -> None:
        self._items = iter(items)
        self._previous: BlockKey | None = None
        self.head: Collectible[T] | None = None
        self.advance()

    def advance(self) -> None:
        nxt = next(self._items, None)
        if nxt is not None and self._previous is not None and nxt.key < self._previous:
            raise errors.CollectionError(
                "collectibles", str(nxt.key), "arrive out of block order: the input must be sorted by block key"
            )
        if nxt is not None:
            self._previous = nxt.key
        self.head = nxt


def plan_files(
    collectibles: Iterable[Collectible[T]],
    *,
    max_per_file: int,
    ids: IdSource,
    created_at: dt.datetime,
) -> Iterator[PlannedFile[T]]:
    """Lazily cut the sorted input into files; consume each file's entries before the next."""
    if max_per_file < 1:
        raise errors.ConfigurationError("max_transactions_per_file", max_per_file, "must be at least 1")
    cursor: _Cursor[T] = _Cursor(collectibles)
    while cursor.head is not None:
        first = cursor.head
        message_id = ids.message_id(created_at)
        if len(message_id) > MESSAGE_ID_MAX:
            raise errors.ConfigurationError("message_id", message_id, f"is longer than {MESSAGE_ID_MAX} characters")
        header = FileHeader(
            message_id=message_id,
            created_at=created_at,
            initiating_party_name=first.creditor.name,
            initiating_party_id=first.creditor.creditor_id,
        )
        planned = PlannedFile(header, first.creditor, _file_entries(cursor, first.key.creditor_id, message_id, max_per_file))
        yield planned
        # Drain what the caller left unread so the next file starts at the right place.
        for _ in planned.entries:
            pass


def _file_entries(
    cursor: _Cursor[T], creditor_id: str, message_id: str, max_per_file: int
) -> Iterator[tuple[PaymentBlock, T]]:
    written = 0
    block: PaymentBlock | None = None
    blocks = 0
    while cursor.head is not None and written < max_per_file:
        item = cursor.head
        if item.key.creditor_id != creditor_id:
            return
        if block is None or item.key != block.key:
            blocks += 1
            if blocks >= 10**BLOCK_NUMBER_DIGITS:
                return  # a new file starts; PmtInfIds must stay within 35 characters
            block = PaymentBlock(f"{message_id}-{blocks:0{BLOCK_NUMBER_DIGITS}d}", item.key, item.creditor)
        yield block, item.item
        written += 1
        cursor.advance()
