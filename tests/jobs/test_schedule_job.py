"""The schedule job (``jobs.accounts.run_schedule``): one transaction per creditor, run again
when PostgreSQL undoes it to break a deadlock, as a reconciliation is.

A schedule page share-locks its mandates, then locks their accounts. The other transaction
here holds an account and then asks for its mandate (an order no engine writer takes, so the
cycle forms at a known moment), with a longer deadlock_timeout so the schedule is undone.
SQLite queues the two at BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select, text

from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest, DebtorAccount, Mandate, ScheduleSlot
from sepa_engine.db.session import Database
from sepa_engine.engine import Engine
from sepa_engine.jobs.accounts import run_schedule
from sepa_engine.services.schedule import ScheduleReport
from tests import accounts_world as world
from tests.concurrency import in_thread, until_a_writer_waits_for_a_lock
from tests.services.test_schedule_pages import WINDOW


def _the_job(db: Database, _tmp_path: Path) -> ScheduleReport:
    return run_schedule(db, world.clock(), WINDOW)


def _the_engine(db: Database, tmp_path: Path) -> ScheduleReport:
    settings = Settings(database_url=db.url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    return Engine(settings, database=db, clock=world.clock()).schedule_automatic(run_date=WINDOW)


@pytest.mark.parametrize("schedule", [_the_job, _the_engine], ids=["the nightly's step", "accounts schedule run"])
def test_a_creditors_schedule_the_database_undoes_to_break_a_deadlock_is_run_again_and_debits_once(
    db: Database, tmp_path: Path, schedule: Callable[[Database, Path], ScheduleReport],
) -> None:
    # Before, the schedules step ended on PostgreSQL's "deadlock detected", every creditor
    # after this one left to the next night; `accounts schedule run` on a traceback.
    world.creditor(db, "pressimmo")
    world.account(db, "pressimmo", "AG-1")
    world.entry(db, "F1", "100.00")
    world.go_automatic(db, "pressimmo", "AG-1", day=7)
    scheduling, outcome = in_thread(lambda: schedule(db, tmp_path), start=False)

    with db.transaction() as other:
        if db.is_sqlite:  # BEGIN IMMEDIATE took the ledger's write lock
            other.execute(text("UPDATE debtor_accounts SET reference = reference"))
        else:
            other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            other.execute(select(DebtorAccount.id).with_for_update())
        scheduling.start()
        until_a_writer_waits_for_a_lock(db, or_ends=scheduling)
        other.execute(select(Mandate.id).with_for_update())
        if db.is_sqlite:
            other.execute(text("UPDATE mandates SET status = status"))
    scheduling.join(timeout=60)

    (report,) = outcome
    assert isinstance(report, ScheduleReport), report
    assert [(item.account_reference, item.outcome, item.amount_cents) for item in report.items] == [
        ("AG-1", "requested", 10_000)
    ]
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleSlot)) == 1
        assert s.scalar(select(func.count()).select_from(DebitRequest)) == 1
