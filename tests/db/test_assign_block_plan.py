"""Each planned block's requests are assigned in one UPDATE that reads only the block's own
range of request ids, on both tables it joins.

Regression: the range was said of the decisions only. On a ledger of 1,000,000 requests in
ten blocks PostgreSQL then hash-joined a sequential scan of the whole table for every block
after the first (2.2 s a block against 1.6 s); on this test's small tables, with sequential
scans off, it read every pending request through the queue's index."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

from sqlalchemy import text

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.repositories import collection as repo
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger
from tests.db.plans import plans_of

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)


def test_a_blocks_assignment_reads_the_requests_of_its_id_range_only(db, tmp_path: Path, database_url, monkeypatch):
    creditor = ledger.creditor(db, max_per_file=4)
    ledger.many_requests(db, creditor, 10)
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    plans: list[str] = []
    real = repo.assign_block

    def assign_block(session, **kwargs):  # type: ignore[no-untyped-def]
        if not db.is_sqlite:
            # Tiny tables: without this PostgreSQL would rightly scan them whole. With it, the
            # choice is between ways of reading by key, which is what this test is about.
            session.execute(text("SET LOCAL enable_seqscan = off"))
        with plans_of(session, "UPDATE debit_requests", sqlite=db.is_sqlite) as found:
            moved = real(session, **kwargs)
        plans.extend(found)
        return moved

    monkeypatch.setattr(repo, "assign_block", assign_block)
    if not db.is_sqlite:
        # This test's rows, not what an earlier test of the worker left in the statistics.
        with db.transaction() as s:
            s.execute(text("ANALYZE debit_requests"))
    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))

    assert [f.count for f in report.files] == [4, 4, 2] and len(plans) == 3
    for plan in plans:
        if db.is_sqlite:
            # A loop over the block's decisions, each request found by its key.
            assert "collection_decisions" in plan.splitlines()[0] and "id>? AND id<?" in plan.splitlines()[0], plan
            assert plan.splitlines()[1] == "SEARCH debit_requests USING INTEGER PRIMARY KEY (rowid=?)", plan
        else:
            assert re.search(r"Index Cond: \(\(id >= \d+\) AND \(id <= \d+\)\)", plan), plan
