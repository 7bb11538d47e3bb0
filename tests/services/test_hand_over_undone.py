"""A file's hand-over that PostgreSQL undoes to break a deadlock is done again after the
file is published, in the same run, as on SQLite; the file is not left to the next run.

On PostgreSQL the hand-over (the requests SUBMITTED, the mandates' history, the payments)
runs on a connection of its own while the file is written, and holds the debtor's mandate
while its payment waits for the account: it can be the writer of
``tests.concurrency.the_other_side_of_a_cycle``. SQLite hands a file over after recording
it, on the run's one writer: there the other transaction waits for the hand-over's commit.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from sepa_engine.clock import FixedClock
from sepa_engine.db.models import Batch, DebitRequest, LedgerEntry, Mandate
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import CollectionReport, run_collection
from tests import ledger
from tests.concurrency import hold_the_hand_over, in_thread, the_other_side_of_a_cycle

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
    the_other_side_of_a_cycle(db, collecting, go=release.set)
    collecting.join(timeout=60)

    (report,) = outcome
    assert isinstance(report, CollectionReport), report
    assert report.failures == [] and [(f.count, f.path.exists()) for f in report.files] == [(1, True)]
    with db.reader() as s:
        assert s.scalars(select(Batch.status)).all() == ["published"]
        assert s.get(DebitRequest, request_id).status == "submitted"  # type: ignore[union-attr]
        assert s.scalar(select(func.count()).where(LedgerEntry.debit_request_id == request_id)) == 1
        assert None not in s.scalars(select(Mandate.first_collected_on)).all()  # the history moved, once
