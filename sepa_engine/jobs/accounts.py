"""Thin jobs for customer accounts, each owning its transaction (a scheduler calls them).

* ``run_schedule`` once a day: the automatic debits whose pre-notification window opened.
* ``book_payments`` after each collection run (until the run books them itself): debits
  that reached the bank become payment entries of their accounts.
"""

from __future__ import annotations

import datetime as dt

from sepa_engine.clock import Clock
from sepa_engine.db.session import Database
from sepa_engine.services import accounts, schedule


def run_schedule(db: Database, clock: Clock, run_date: dt.date | None = None) -> schedule.ScheduleReport:
    with db.transaction() as session:
        return schedule.schedule_automatic(session, run_date, clock)


def book_payments(db: Database, clock: Clock, batch_id: int | None = None) -> accounts.BookingReport:
    with db.transaction() as session:
        return accounts.book_submitted_payments(session, clock, batch_id=batch_id)
