"""Engines and sessions for SQLite (embedded default) and PostgreSQL (production).

SQLite: WAL journal, foreign keys on, a busy timeout, and write transactions opened with
BEGIN IMMEDIATE so two writers queue on the database lock instead of failing halfway
when a read turns into a write. Read-only work (listing, streaming a file's rows) uses
``reader()``, which begins DEFERRED and so never blocks writers under WAL.

Services never commit: the caller (a job or a CLI command) owns the transaction through
``transaction()``, or ``run_in_transaction()`` for work it may run again whole when PostgreSQL
undoes it to break a deadlock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

import structlog
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sepa_engine import private_files

SQLITE_BUSY_TIMEOUT_MS = 60_000
CONNECT_TIMEOUT_SECONDS = 10
# How many times in all ``Database.run_in_transaction`` runs work PostgreSQL keeps undoing.
# A deadlock needs another writer in a cycle at that very moment; three in a row is no
# longer chance, and the error is better raised than hidden.
RUNS_WHEN_UNDONE = 3

_T = TypeVar("_T")
log = structlog.get_logger(__name__)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, lock_wait_ms: int | None = None) -> Engine:
    """An engine for ``url``. ``lock_wait_ms`` bounds how long a statement waits for another
    transaction's locks (the API's, see ``Database``); without it SQLite waits its busy
    timeout and PostgreSQL as long as the holder runs."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.query.get("uri"):
            # Full IBANs, names and token hashes: the file is owner-only before SQLite opens it.
            private_files.ensure_file(Path(parsed.database))
        busy_ms = SQLITE_BUSY_TIMEOUT_MS if lock_wait_ms is None else lock_wait_ms
        engine = create_engine(url, connect_args={"timeout": busy_ms / 1000}, hide_parameters=True)
        _configure_sqlite(engine, busy_ms)
        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    # Long transactions that fill a fresh table (a load, a run) would otherwise keep the
    # generic plan PostgreSQL made while the table was nearly empty: lookups by key then
    # degrade to scans as the table grows. The engine's own statements are never prepared
    # (prepare_threshold=None), so each is planned for its values; the foreign-key checks
    # PostgreSQL runs itself are cached plans, which force_custom_plan plans again for every
    # row (see reuse_key_check_plans for the transactions that may keep them).
    # connect_timeout: a database behind a dropped route answers "unavailable" within
    # seconds instead of leaving cron hanging on the operating system's TCP timeout.
    # lock_timeout is a server setting of the session: set at connection, it costs no round trip.
    options = "-c plan_cache_mode=force_custom_plan" + (f" -c lock_timeout={lock_wait_ms}" if lock_wait_ms else "")
    return create_engine(
        parsed, pool_pre_ping=True, hide_parameters=True,
        connect_args={
            "options": options, "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            "prepare_threshold": None,
        },
    )


def reuse_key_check_plans(session: Session) -> None:
    """PostgreSQL: let the foreign-key checks of this transaction keep one plan each.

    By default every check is planned again for its row (``make_engine``): a transaction
    that fills a table its own later rows reference would otherwise keep the plan made while
    that table was small, a sequential scan (measured here: 20,000 rows and a reference to
    each, 0.46 s planned per row, 8.7 s with the cached plan). Planning each check cost the
    collection run a third of the server's time (100,000 requests: 12.2 s of server time
    against 8.0 s). Only for transactions whose checks look up tables they do not fill:
    the collection run (its few new blocks aside) and the reconciliation; a transaction that
    fills what its checks look up has ``key_check_plans_kept_when_large``. Ends with the
    transaction (SET LOCAL); the engine's own statements are planned for their values
    either way, since it never prepares them.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL plan_cache_mode = auto"))


# Past this many pages (8 MiB), a table is never read whole to find one row by its key: the
# planner costs a sequential scan at one unit a page at least, a lookup through the primary
# key at a few random pages (4 units each by default), so even a generic plan made then is a
# lookup, and stays one as the table grows. Below it, a plan made while the table is small
# may be a sequential scan, and kept, would read the whole table once per row after.
KEY_CHECK_PAGES = 1_024

# One round trip: the mode in force, and "auto" for the rest of the transaction when each
# table is past the threshold (the materialised CTE reads both before anything is set).
_KEEP_WHEN_LARGE = text(
    "WITH before AS MATERIALIZED ("
    " SELECT current_setting('plan_cache_mode') AS previous,"
    " (SELECT min(pg_relation_size(CAST(t AS regclass))) FROM unnest(CAST(:tables AS text[])) AS t) AS smallest)"
    " SELECT previous, CASE WHEN smallest >= :pages * current_setting('block_size')::bigint"
    " THEN set_config('plan_cache_mode', 'auto', true) END FROM before"
)


@contextmanager
def key_check_plans_kept_when_large(session: Session, filled: Sequence[str]) -> Iterator[bool]:
    """PostgreSQL: ``reuse_key_check_plans`` for a block that fills ``filled``, tables its own
    foreign-key checks look up (a chunk of enqueued requests and the invoices they carry, which
    their selections reference), once every one of them is past ``KEY_CHECK_PAGES``; yields
    whether it did. The mode in force before comes back when the block ends (a failure leaves it
    to the rollback of the block's savepoint or transaction). A new ledger's first loads, whose
    tables start small, keep planning each check for its row: linear, only slower."""
    if session.get_bind().dialect.name != "postgresql":
        yield False
        return
    previous, kept = session.execute(_KEEP_WHEN_LARGE, {"tables": list(filled), "pages": KEY_CHECK_PAGES}).one()
    yield kept is not None
    if kept is not None and previous != "auto":
        session.execute(text("SELECT set_config('plan_cache_mode', :mode, true)"), {"mode": previous})


def lock_wait_expired(exc: BaseException) -> bool:
    """Whether ``exc`` is a statement that gave up waiting for another transaction's locks:
    PostgreSQL's ``lock_timeout`` (SQLSTATE 55P03, lock_not_available) or SQLite's busy
    timeout on the ledger's write lock. Nothing the statement's transaction did is kept."""
    if not isinstance(exc, DBAPIError):
        return False
    if getattr(exc.orig, "sqlstate", None) == "55P03":
        return True
    return isinstance(exc, OperationalError) and "database is locked" in str(exc.orig)


# PostgreSQL's "transaction rollback" codes for a transaction it undid whole so that another
# could go on, which the same work run again may get through (PostgreSQL 15 documentation,
# Appendix A, class 40): serialization_failure and deadlock_detected. Not 40002, a deferred
# constraint that failed: run again, it fails again.
_UNDONE_TO_LET_ANOTHER_GO_ON = frozenset({"40001", "40P01"})


def transaction_undone(exc: BaseException) -> bool:
    """Whether ``exc`` is PostgreSQL undoing the whole transaction to break a deadlock with
    another (or a serialization failure): nothing it did is kept, and the same work run
    again may get through. SQLite queues writers at BEGIN IMMEDIATE and never does this."""
    return isinstance(exc, DBAPIError) and getattr(exc.orig, "sqlstate", None) in _UNDONE_TO_LET_ANOTHER_GO_ON


def _configure_sqlite(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's own is DEFERRED).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={busy_ms}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):  # type: ignore[no-untyped-def]
        mode = connection.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        connection.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """One engine and its session factories.

    ``lock_wait_seconds`` bounds every wait for another transaction's locks, on both backends
    (``lock_wait_expired`` tells the error): the API's, whose callers need an answer. Without
    it a job waits for the one before it (SQLite up to its busy timeout)."""

    def __init__(self, url: str, *, lock_wait_seconds: float | None = None) -> None:
        self.url = url
        self.lock_wait_seconds = lock_wait_seconds
        self.engine = make_engine(url, lock_wait_ms=None if lock_wait_seconds is None else round(lock_wait_seconds * 1000))
        self._writer = sessionmaker(self.engine, expire_on_commit=False)
        reader_engine = self.engine.execution_options(sqlite_begin="DEFERRED")
        self._reader = sessionmaker(reader_engine, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return is_sqlite(self.engine)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction: committed when the block ends, rolled back on any error."""
        with self._writer() as session, session.begin():
            yield session

    def run_in_transaction(self, work: Callable[[Session], _T], *, what: str) -> _T:
        """``work(session)`` in a write transaction, committed; run again in a new one when
        PostgreSQL undid it to break a deadlock (``transaction_undone``), up to
        ``RUNS_WHEN_UNDONE`` times in all. The undone run left nothing behind, so running it
        again cannot apply anything twice: for work whose effects are all in this
        transaction (a bank file's reconciliation, a creditor's schedule), never for work that
        also moves files."""
        for run in range(1, RUNS_WHEN_UNDONE + 1):
            try:
                with self.transaction() as session:
                    return work(session)
            except DBAPIError as exc:
                if run == RUNS_WHEN_UNDONE or not transaction_undone(exc):
                    raise
                log.warning("db.transaction_undone", what=what, run=run, sqlstate=getattr(exc.orig, "sqlstate", None))
        raise AssertionError("unreachable: the last run returns or raises")

    @contextmanager
    def reader(self) -> Iterator[Session]:
        with self._reader() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
