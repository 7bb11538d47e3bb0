"""Idempotent writes: the same key with the same content is a replay, with other content a
conflict.

A key is looked up before anything is written; when two writers race past that lookup
with the same key, the unique constraint on the key decides. The loser's insert runs in a
SAVEPOINT, so its failure rolls back only its own statements and leaves the caller's
transaction usable; it then reads the winner's row and answers as a replay would.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from json.encoder import encode_basestring as _json_string  # what json.dumps(ensure_ascii=False) uses
from typing import Protocol, TypeVar

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sepa_engine import errors

KEY_MAX = 100  # the idempotency_key columns


class _Keyed(Protocol):
    # Read-only here, so rows whose column is NOT NULL (``str``) qualify as well.
    @property
    def content_hash(self) -> str | None: ...


RowT = TypeVar("RowT", bound=_Keyed)


def check_key(key: object) -> str:
    if not isinstance(key, str):
        raise errors.InvalidFormat("idempotency_key", f"<{type(key).__name__}>", "must be a string")
    if not key.strip():
        raise errors.InvalidLength("idempotency_key", key, "is empty")
    if len(key) > KEY_MAX:
        raise errors.InvalidLength("idempotency_key", key, f"is longer than {KEY_MAX} characters")
    return key


def content_hash(content: Mapping[str, object]) -> str:
    """sha256 of the canonical JSON of ``content`` (sorted keys, no spaces, UTF-8)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_plain)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_digest(content: dict[str, object]) -> str:
    """``content_hash`` of a flat dict, the same hex digest, several times faster.

    The generic encoder costs more than everything else a bulk path does per row (the
    reconciliation hashes one returned payment and one retry per record). Strings, ints,
    booleans, None and dates are written here exactly as the canonical JSON writes them;
    anything else goes through ``content_hash``.
    """
    parts = []
    for key in sorted(content):
        value = content[key]
        if value is None:
            text = "null"
        elif value is True or value is False:
            text = "true" if value else "false"
        elif isinstance(value, int):
            text = int.__repr__(value)
        elif isinstance(value, str):
            text = _json_string(value)
        elif isinstance(value, dt.date):
            text = _json_string(value.isoformat())
        else:
            return content_hash(content)
        parts.append(f"{_json_string(key)}:{text}")
    return hashlib.sha256(("{" + ",".join(parts) + "}").encode("utf-8")).hexdigest()


def _plain(value: object) -> object:
    if isinstance(value, (dt.date, Decimal)):
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    raise TypeError(f"{type(value).__name__} has no canonical JSON form")


def ensure_same(row: _Keyed, digest: str, key: str) -> None:
    if row.content_hash != digest:
        raise errors.IdempotencyConflict("idempotency_key", key)


def write_once(
    session: Session,
    write: Callable[[], RowT],
    find: Callable[[], RowT | None],
    digest: str,
    key: str,
    duplicate: Callable[[], errors.SepaEngineError],
) -> tuple[RowT, bool]:
    """Run ``write`` in a savepoint; return ``(row, created)``.

    When a unique constraint fails, ``find`` looks for the row a concurrent writer stored
    under the same key: found, it is a replay (or a conflict when its content differs);
    not found, another constraint failed and ``duplicate()`` says which.
    """
    try:
        with session.begin_nested():
            row = write()
        return row, True
    except IntegrityError as exc:
        existing = find()
        if existing is None:
            raise duplicate() from exc
        ensure_same(existing, digest, key)
        return existing, False
