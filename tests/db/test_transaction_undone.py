"""``Database.run_in_transaction``: work PostgreSQL undid to break a deadlock (or for a
serialization failure) is run again in a new transaction, a bounded number of times; any
other error is raised at once. What an undone run wrote is gone before the next one starts.

The undo is raised here as the driver raises it (psycopg's error, wrapped by SQLAlchemy), on
either backend: the real one, a cycle between two transactions, is in
``tests/jobs/test_returns_inbox.py`` and ``tests/api/test_deadlock_victim_api.py``."""

from __future__ import annotations

import psycopg.errors
import pytest
from sqlalchemy import insert, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session

from sepa_engine.db.models import Creditor
from sepa_engine.db.session import RUNS_WHEN_UNDONE, Database, lock_wait_expired, transaction_undone
from tests import ledger


def _undone(orig: Exception) -> DBAPIError:
    return OperationalError("UPDATE ...", {}, orig)


_A_CREDITOR = dict(
    name="Gestion Immobiliere Martin", creditor_identifier="FR72ZZZ123456", iban="FR7630006000011234567890189",
    bic="AGRIFRPP", local_instrument="CORE", pain008_version="pain.008.001.08", lead_days=1, cutoff="16:00",
    timezone="Europe/Paris", max_per_file=1000, first_collection_policy="frst", created_at=ledger.T0,
)


def test_work_undone_to_break_a_deadlock_is_run_again_and_the_undone_run_leaves_nothing(db: Database) -> None:
    runs: list[str] = []

    def work(session: Session) -> list[str]:
        runs.append(f"run-{len(runs) + 1}")
        session.execute(insert(Creditor).values(**{**_A_CREDITOR, "code": runs[-1]}))
        if len(runs) == 1:
            raise _undone(psycopg.errors.DeadlockDetected("deadlock detected"))
        return runs

    assert db.run_in_transaction(work, what="a test") == ["run-1", "run-2"]
    with db.reader() as s:
        assert s.scalars(select(Creditor.code)).all() == ["run-2"]  # the first run's row went with it


@pytest.mark.parametrize("undo", [psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure])
def test_work_undone_every_time_is_raised_after_the_last_run(db: Database, undo: type[Exception]) -> None:
    runs: list[int] = []

    def work(_session: Session) -> None:
        runs.append(1)
        raise _undone(undo("again"))

    with pytest.raises(DBAPIError) as raised:
        db.run_in_transaction(work, what="a test")
    assert transaction_undone(raised.value) and len(runs) == RUNS_WHEN_UNDONE


@pytest.mark.parametrize("orig", [
    psycopg.errors.TransactionIntegrityConstraintViolation("a deferred constraint"),  # 40002: fails again
    psycopg.errors.LockNotAvailable("lock timeout"),  # 55P03: the caller's wait is over, not a cycle
    psycopg.errors.UniqueViolation("duplicate key"),
])
def test_any_other_database_error_is_raised_at_the_first_run(db: Database, orig: Exception) -> None:
    runs: list[int] = []

    def work(_session: Session) -> None:
        runs.append(1)
        raise _undone(orig)

    with pytest.raises(DBAPIError) as raised:
        db.run_in_transaction(work, what="a test")
    assert not transaction_undone(raised.value) and runs == [1]
    assert lock_wait_expired(raised.value) == isinstance(orig, psycopg.errors.LockNotAvailable)
