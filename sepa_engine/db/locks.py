"""Locks between engine processes sharing one ledger.

* ``creditor_lock``: one per creditor, held while a collection run recovers, assigns and
  writes that creditor's files. Runs in several processes (``collect``, ``run-nightly``,
  ``serve``, on one host or several) collect different creditors at the same time; each
  skips the creditors another one holds.
* ``run_lock(db, "scheduler")``: one scheduler per ledger (``jobs/nightly.py``).
* ``run_lock(db, RECONCILIATION_LOCK)``: one reconciliation at a time per ledger, an inbox
  pass (``jobs/returns_inbox.py``) or a file given to ``Engine.reconcile`` (``sepa-engine
  reconcile``): two importers never fight over an inbox's files, and two files never wait
  for each other's rows in a cycle.

PostgreSQL: a session-level advisory lock on a dedicated connection; the server drops it
when the holder's connection dies, so a crashed run never blocks the next one.
SQLite: an exclusive ``flock`` on a file beside the database; the kernel drops it when
the holder's process dies, for the same reason.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import SQLAlchemyError

from sepa_engine import errors
from sepa_engine.db.session import Database

_MEMORY_LOCKS: dict[str, threading.Lock] = {}
RECONCILIATION_LOCK = "reconciliation"


class LockBusy(errors.CollectionError):
    code = "lock_busy"
    problem = "is held by another run"


class LockLost(errors.CollectionError):
    code = "lock_lost"
    problem = "was lost (the database server dropped the holder's connection)"


class Lease:
    """A lock being held; ``held()`` asks whether it still is.

    A flock lives as long as the process; an advisory lock only as long as its connection,
    which a PostgreSQL restart or a network cut ends without telling the holder. A long-lived
    holder (``serve``) asks before each job, so it never acts beside a second scheduler that
    took the lock meanwhile.
    """

    def held(self) -> bool:
        return True


@contextmanager
def run_lock(db: Database, name: str, wait_seconds: float = 0.0) -> Iterator[Lease]:
    """A ledger-wide named lock; ``LockBusy`` if it is still held after ``wait_seconds``
    (negative: wait for ever)."""
    with _lock(db, name, zlib.crc32(f"sepa-engine:{name}".encode()), wait_seconds) as lease:
        yield lease


# Advisory keys of creditor locks: this namespace in the high 32 bits, the creditor id in the
# low ones, so no two creditors share a key and none collides with a named lock (high half 0).
_CREDITOR_SPACE = zlib.crc32(b"sepa-engine:collection-creditor") & 0x7FFFFFFF


def creditor_lock_name(creditor_id: int) -> str:
    return f"collection-creditor-{creditor_id}"


@contextmanager
def creditor_lock(db: Database, creditor_id: int, wait_seconds: float = 0.0) -> Iterator[Lease]:
    """The collection lock of one creditor (by id: codes are free text, ids fit a key and a
    file name)."""
    key = (_CREDITOR_SPACE << 32) | creditor_id
    with _lock(db, creditor_lock_name(creditor_id), key, wait_seconds) as lease:
        yield lease


@contextmanager
def _lock(db: Database, name: str, key: int, wait_seconds: float) -> Iterator[Lease]:
    if db.is_sqlite:
        with _file_lock(db, name, wait_seconds):
            yield Lease()
    else:
        with _advisory_lock(db, name, key, wait_seconds) as lease:
            yield lease


def _lock_path(db: Database, name: str) -> Path | None:
    database = make_url(db.url).database
    if not database or database == ":memory:":
        return None
    return Path(f"{database}.{name}.lock")


@contextmanager
def _file_lock(db: Database, name: str, wait_seconds: float) -> Iterator[None]:
    path = _lock_path(db, name)
    if path is None:
        lock = _MEMORY_LOCKS.setdefault(f"{db.url}:{name}", threading.Lock())
        if not lock.acquire(timeout=wait_seconds if wait_seconds > 0 else -1 if wait_seconds < 0 else 0):
            raise LockBusy("lock", name)
        try:
            yield
        finally:
            lock.release()
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _acquire(lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB), name, wait_seconds)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


class _AdvisoryLease(Lease):
    # A one-bigint advisory lock shows in pg_locks as classid = high half, objid = low half,
    # objsubid = 1.
    _HELD = text(
        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND pid = pg_backend_pid() "
        "AND classid::bigint = :hi AND objid::bigint = :lo AND objsubid = 1"
    )

    def __init__(self, conn: Connection, key: int) -> None:
        self._conn, self._key = conn, key
        self._lost = False

    def held(self) -> bool:
        if self._lost:
            return False  # a new connection would not have the lock: lost stays lost
        try:
            count = self._conn.execute(self._HELD, {"hi": self._key >> 32, "lo": self._key & 0xFFFFFFFF}).scalar()
            self._conn.commit()
        except SQLAlchemyError:
            count = 0  # the connection is gone, and the lock with it
        self._lost = not count
        return not self._lost


@contextmanager
def _advisory_lock(db: Database, name: str, key: int, wait_seconds: float) -> Iterator[Lease]:
    with db.engine.connect() as conn:
        def attempt() -> None:
            got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": key}).scalar()
            try:
                conn.commit()
            except SQLAlchemyError:
                if got:
                    # Taken, then the connection went (a server restart, a terminated backend):
                    # the lock went with it, as when it goes while held (Lease.held).
                    raise LockLost("lock", name) from None
                raise
            if not got:
                raise BlockingIOError
        _acquire(attempt, name, wait_seconds)
        try:
            yield _AdvisoryLease(conn, key)
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
            except SQLAlchemyError:
                pass  # connection lost: the server released the lock already


def _acquire(attempt, name: str, wait_seconds: float) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + wait_seconds
    while True:
        try:
            attempt()
            return
        except (BlockingIOError, OSError):
            if wait_seconds >= 0 and time.monotonic() >= deadline:
                raise LockBusy("lock", name) from None
            time.sleep(0.1)
