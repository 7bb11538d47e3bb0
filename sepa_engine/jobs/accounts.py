"""Thin jobs for customer accounts, each owning its transaction (a scheduler calls them).

* ``run_schedule`` once a day: the automatic debits whose pre-notification window opened,
  one transaction per creditor (run again when PostgreSQL undoes it to break a deadlock);
  ``should_stop`` is asked between creditors, and a creditor left out is simply decided by
  the next run (each decision is recorded once per period).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sepa_engine.clock import Clock
from sepa_engine.db.repositories import accounts as accounts_repo
from sepa_engine.db.session import Database
from sepa_engine.services import schedule


def _never() -> bool:
    return False


def run_schedule(
    db: Database, clock: Clock, run_date: dt.date | None = None, *, should_stop: Callable[[], bool] = _never
) -> schedule.ScheduleReport:
    with db.reader() as session:
        codes = [creditor.code for creditor in accounts_repo.creditors(session)]
    items: list[schedule.ScheduledItem] = []
    for code in codes:
        if should_stop():
            break
        items.extend(_schedule_creditor(db, clock, run_date, code).items)
    return schedule.ScheduleReport(run_date, tuple(items))


def _schedule_creditor(db: Database, clock: Clock, run_date: dt.date | None, code: str) -> schedule.ScheduleReport:
    # All in the ledger, in one transaction: one PostgreSQL undid to break a deadlock is run again.
    return db.run_in_transaction(
        lambda session: schedule.schedule_automatic(session, run_date, clock, creditor_code=code), what=f"schedule {code}"
    )
