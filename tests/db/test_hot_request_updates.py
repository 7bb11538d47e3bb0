"""A request's status changes after its assignment, and a mandate's history, touch no column an
index reads, and their tables' pages keep room for the next version (migration 0012).

PostgreSQL keeps an updated row's new version on its page, with no new index entry (a HOT
update), only when no column that an index reads changes, the predicates of partial indexes
included, and the page has room. The queue and refused indexes read ``indexed_status``, NULL
for every status but pending and refused, so publishing a file (assigned -> submitted) or a
bank's answer (submitted -> settled, returned...) changes only columns no index reads. Before
0012 their predicates read ``status`` and none of those updates could be HOT.

Whether a given update is HOT also depends on the page's room once its dead versions are
pruned, which any long transaction of the cluster can hold back: BENCHMARKS.md has the
counts of a collection run (every submitted update of 100,000 HOT); the tests check what the
schema decides.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest
from sqlalchemy import select, text, update

from sepa_engine.clock import FixedClock
from sepa_engine.config import Settings
from sepa_engine.db.models import DebitRequest
from sepa_engine.domain.statuses import RequestStatus
from sepa_engine.ids import SequentialIds
from sepa_engine.services.collection import run_collection
from tests import ledger

NOW = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.timezone.utc)
# What the run and reconciliation write after a request is assigned, and a file's hand-over
# writes of each of its mandates (repositories/collection.record_presentation).
CHANGED = {
    "debit_requests": ("status", "status_changed_at", "reason_code", "reason"),
    "mandates": (
        "first_collected_on", "last_collected_on", "final_collected", "presented_creditor_identifier",
        "amendment_pending",
    ),
}


def _index_definitions(db, table: str) -> list[str]:  # type: ignore[no-untyped-def]
    with db.reader() as s:
        if db.is_sqlite:
            query = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t AND sql IS NOT NULL"
        else:
            query = "SELECT indexdef FROM pg_indexes WHERE tablename = :t"
        return [row[0] for row in s.execute(text(query), {"t": table})]


@pytest.mark.parametrize("table", sorted(CHANGED))
def test_no_index_reads_a_column_that_a_run_or_a_return_changes_and_pages_keep_room(db, table):
    definitions = _index_definitions(db, table)
    assert definitions
    for definition in definitions:
        for column in CHANGED[table]:
            assert not re.search(rf"\b{column}\b", definition), definition
    if not db.is_sqlite:
        with db.reader() as s:
            options = s.scalar(text("SELECT reloptions FROM pg_class WHERE relname = :t"), {"t": table})
        assert options == ["fillfactor=50"]


def test_indexed_status_is_the_status_while_pending_or_refused_and_null_in_every_other(db):
    creditor = ledger.creditor(db)
    ids = ledger.many_requests(db, creditor, len(RequestStatus))
    with db.transaction() as s:
        for request_id, status in zip(ids, RequestStatus, strict=True):
            s.execute(update(DebitRequest).where(DebitRequest.id == request_id).values(status=status.value))
    with db.reader() as s:
        found = dict(s.execute(select(DebitRequest.status, DebitRequest.indexed_status)).all())
    assert found == {status.value: status.value if status.value in ("pending", "refused") else None for status in RequestStatus}


def test_a_collection_run_leaves_its_submitted_requests_out_of_the_queue(db, tmp_path: Path, database_url):
    creditor = ledger.creditor(db)
    ledger.many_requests(db, creditor, 3)
    settings = Settings(database_url=database_url, var_dir=tmp_path, outbox_dir=tmp_path / "outbox")
    report = run_collection(db, settings, FixedClock(NOW), SequentialIds("RUN"))
    ledger.many_requests(db, creditor, 2)

    assert [f.count for f in report.files] == [3]
    with db.reader() as s:
        rows = s.execute(select(DebitRequest.status, DebitRequest.indexed_status)).all()
    assert sorted(rows, key=str) == sorted([("submitted", None)] * 3 + [("pending", "pending")] * 2, key=str)
