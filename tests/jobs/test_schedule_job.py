"""The schedule job (``jobs.accounts.run_schedule``): one transaction per creditor, run again
when PostgreSQL undoes it to break a deadlock, as a reconciliation is.

A schedule page share-locks its mandates, then locks their accounts: it can be the writer of
``tests.concurrency.the_other_side_of_a_cycle``. SQLite queues the two at BEGIN IMMEDIATE."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest, ScheduleSlot
from sepa_engine.db.session import Database
from sepa_engine.engine import Engine
from sepa_engine.jobs.accounts import run_schedule
from sepa_engine.services.schedule import ScheduleReport
from tests import accounts_world as world
from tests.concurrency import in_thread, the_other_side_of_a_cycle
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

    the_other_side_of_a_cycle(db, scheduling, go=scheduling.start)
    scheduling.join(timeout=60)

    (report,) = outcome
    assert isinstance(report, ScheduleReport), report
    assert [(item.account_reference, item.outcome, item.amount_cents) for item in report.items] == [
        ("AG-1", "requested", 10_000)
    ]
    with db.reader() as s:
        assert s.scalar(select(func.count()).select_from(ScheduleSlot)) == 1
        assert s.scalar(select(func.count()).select_from(DebitRequest)) == 1
