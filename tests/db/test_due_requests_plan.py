"""The run's due requests come in keyset chunks by (mandate, request); each chunk reads the
mandates from where the previous chunk stopped.

Regression: PostgreSQL does not carry an inequality across a join, so the chunk's keyset
bounded the requests but not their mandates, and a merge join read every mandate from the
first one for each chunk: at 1,000,000 requests the due reads took 18.6 s of the run
(quadratic in its size), 107 ms a chunk by the middle against 28 ms with the bound."""

from __future__ import annotations

import datetime as dt
import re

from sepa_engine.db.repositories import collection as repo
from tests import ledger
from tests.db.plans import plans_of

DUE = dt.date(2026, 11, 30)


def test_due_chunks_cover_every_request_once_in_mandate_order(db):
    creditor = ledger.creditor(db)
    requests = ledger.many_requests(db, creditor, 30, mandates=12)
    with db.reader() as s:
        chunks = list(repo.due_requests(s, creditor, DUE, chunk_size=7))
    seen = [(row.mandate_id, row.id) for chunk in chunks for row in chunk]
    assert [len(chunk) for chunk in chunks] == [7, 7, 7, 7, 2]
    assert seen == sorted(seen) and sorted(row_id for _m, row_id in seen) == sorted(requests)


def test_a_later_due_chunk_bounds_the_mandates_it_reads(db):
    creditor = ledger.creditor(db)
    ledger.many_requests(db, creditor, 12, mandates=12)
    with db.reader() as s, plans_of(s, "FROM debit_requests JOIN mandates", sqlite=db.is_sqlite) as plans:
        list(repo.due_requests(s, creditor, DUE, chunk_size=5))
    later = plans[1]
    if db.is_sqlite:
        # A nested loop: each request's mandate found by its key.
        assert re.search(r"SEARCH mandates USING INTEGER PRIMARY KEY \(rowid=\?\)", later), later
    else:
        # The bound on the mandates themselves (an index condition or a filter of their scan),
        # beside the requests' own ``mandate_id >= ...``.
        assert re.search(r"(?<![\w.])id >= \d+", later), later
