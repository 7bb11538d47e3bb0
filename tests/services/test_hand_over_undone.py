"""A file's hand-over that PostgreSQL undoes to break a deadlock is done again after the
file is published, in the same run, as on SQLite; the file is not left to the next run.

On PostgreSQL the hand-over (the requests SUBMITTED, the mandates' history, the payments)
runs on a connection of its own while the file is written. The other transaction here holds
the debtor's account and then asks for its mandate, which the hand-over holds while its
payment waits for the account: a cycle (an order no engine writer takes, so that the cycle
forms at a known moment; ARCHITECTURE, "Cycles the order cannot rule out"). It gives
PostgreSQL ten seconds before it looks for a cycle itself, so the hand-over is undone.
SQLite hands a file over after recording it, on the run's one writer: there the run waits
for the other transaction and goes on.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select, text

from sepa_engine.clock import FixedClock
from sepa_engine.db.models import Batch, DebitRequest, DebtorAccount, LedgerEntry, Mandate
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import CollectionReport, run_collection
from tests import ledger
from tests.concurrency import hold_the_hand_over, in_thread, until_a_writer_waits_for_a_lock

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)


def test_a_hand_over_undone_to_break_a_deadlock_is_done_again_once_the_file_is_published(db, settings, monkeypatch):
    # Before, the run ended on "deadlock detected": the written file stayed unpublished, its
    # batch PLANNED until the next run (a nightly's: the next night, the collection date missed).
    creditor = ledger.creditor(db)
    request_id = ledger.request(db, creditor, ledger.mandate(db, creditor), 1_000)
    handing, release = hold_the_hand_over(monkeypatch)
    collecting, outcome = in_thread(lambda: run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN")))
    assert handing.wait(timeout=30), "the run never handed its file over"

    if db.is_sqlite:
        release.set()  # the held hand-over has the ledger's write lock: the other waits for its commit
    with db.transaction() as other:
        if db.is_sqlite:  # BEGIN IMMEDIATE took the ledger's write lock
            other.execute(text("UPDATE debtor_accounts SET reference = reference"))
        else:
            other.execute(text("SET LOCAL deadlock_timeout = '10s'"))
            other.execute(select(DebtorAccount.id).with_for_update())
        release.set()
        until_a_writer_waits_for_a_lock(db, or_ends=collecting)
        other.execute(select(Mandate.id).with_for_update())
        if db.is_sqlite:
            other.execute(text("UPDATE mandates SET status = status"))
    collecting.join(timeout=60)

    (report,) = outcome
    assert isinstance(report, CollectionReport), report
    assert report.failures == [] and [(f.count, f.path.exists()) for f in report.files] == [(1, True)]
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).all() == ["published"]
        assert s.get(DebitRequest, request_id).status == "submitted"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).where(LedgerEntry.debit_request_id == request_id)) == 1
        assert None not in s.scalars(select(Mandate.first_collected_on)).all()  # the history moved, once
